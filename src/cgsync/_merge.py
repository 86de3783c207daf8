"""dlt's delete-insert merge, without the key condition that a merge key makes redundant.

A child table (`responses__tags`...) has the primary key (CGID, position) and the merge key
CGID, so that a re-fetched response replaces all its child rows. dlt deletes the rows that
match staging on the primary key OR on the merge key. A row that matches on the primary key
matches on the merge key too, so the OR changes nothing but the plan: it keeps databases from
a hash join. On DuckDB the delete of a periodic sync's rows from a 12.5M-row child table took
1.7 s instead of 0.03 s, grew with the table, and needed a 16 MB block of memory at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dlt.destinations.sql_jobs import SqlMergeFollowupJob

_dlt_key_table_clauses = SqlMergeFollowupJob._gen_key_table_clauses.__func__  # type: ignore[attr-defined]


def _key_table_clauses(
    cls: Any, primary_keys: Sequence[str], merge_keys: Sequence[str]
) -> list[str]:
    if merge_keys and set(merge_keys) <= set(primary_keys):
        primary_keys = []  # implied by the merge key
    return _dlt_key_table_clauses(cls, primary_keys, merge_keys)  # type: ignore[no-any-return]


def drop_implied_key_conditions() -> None:
    """Make dlt's SQL merges select the rows to replace by the merge key alone when it is part
    of the primary key (the same rows). For every pipeline of the process; idempotent."""
    SqlMergeFollowupJob._gen_key_table_clauses = classmethod(_key_table_clauses)  # type: ignore[method-assign,assignment]
