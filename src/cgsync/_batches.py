"""A checkpoint's pages as dlt items: Arrow tables of about BATCH_ROWS rows.

Each CGID comes once per checkpoint (`cgsync._checkpoints.Checkpoint`); within a page, which
only a faulty API would allow, the last version wins (`last_versions`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cgsync._arrow import REJECTED_TABLE_SCHEMA, ArrowPage
from cgsync._tables import CHILD_KEY
from cgsync.settings import PRIMARY_KEY, REJECTED_VALUES_TABLE, SYNCED_AT_COLUMN

BATCH_ROWS = 5_000
"""Rows per dlt item: dlt's cost is per item, and the rows of one item are held in memory
(twice, while they are joined), per resource: half of 10,000 took about 15 MB off the peak of
a 1M-record load at the same speed."""
_ROW = "_cgsync_row"


def batches(resource: str, pages: Iterable[ArrowPage]) -> Iterator[tuple[str, pa.Table]]:
    """`(table name, table)` for the main table `resource` and its children (`resource__tags`...),
    about BATCH_ROWS rows at a time."""
    pending: list[ArrowPage] = []
    for page in map(last_versions, pages):
        if page.num_rows:
            pending.append(page)
        if sum(held_page.num_rows for held_page in pending) >= BATCH_ROWS:
            yield from _batch(resource, pending)
            pending = []
    yield from _batch(resource, pending)


def without(arrow: ArrowPage, cgids: pa.Array | None) -> ArrowPage:
    """The page without the rows of `cgids` (in the main and the child tables)."""
    if cgids is None:
        return arrow

    def keep(table: pa.Table) -> pa.Table:
        return table.filter(pc.invert(pc.is_in(table[PRIMARY_KEY], value_set=cgids)))

    return ArrowPage(
        table=keep(arrow.table),
        children={name: keep(table) for name, table in arrow.children.items()},
        rejected=keep(arrow.rejected),
    )


def _batch(resource: str, pages: list[ArrowPage]) -> Iterator[tuple[str, pa.Table]]:
    if not pages:
        return
    yield resource, pa.concat_tables([page.table for page in pages], promote_options="default")
    for child in pages[0].children:
        parts = [page.children[child] for page in pages if page.children[child].num_rows]
        if parts:
            yield f"{resource}__{child}", pa.concat_tables(parts, promote_options="default")
    rejected = [_rejected_rows(resource, page) for page in pages if page.rejected.num_rows]
    if rejected:
        yield REJECTED_VALUES_TABLE, pa.concat_tables(rejected)


def _rejected_rows(resource: str, page: ArrowPage) -> pa.Table:
    """The page's rejected values as rows of the lake's table of them."""
    count = page.rejected.num_rows
    synced_at = page.table.column(SYNCED_AT_COLUMN)[0]
    return pa.Table.from_arrays(
        [
            pa.repeat(pa.scalar(resource), count),
            *page.rejected.columns,
            pa.repeat(synced_at, count),
        ],
        schema=REJECTED_TABLE_SCHEMA,
    )


def last_versions(page: ArrowPage) -> ArrowPage:
    """The page with each CGID once, in its last version (only a faulty API repeats one)."""
    cgids = page.table.column(PRIMARY_KEY)
    if len(np.unique(cgids.to_numpy())) == len(cgids):
        return page
    return ArrowPage(
        rejected=page.rejected,
        table=_last_rows(page.table, [PRIMARY_KEY]),
        # Child rows name their parent by CGID only: one row per position is kept.
        children={
            name: _last_rows(child, list(CHILD_KEY)) for name, child in page.children.items()
        },
    )


def _last_rows(table: pa.Table, keys: list[str]) -> pa.Table:
    """The last row of `table` for each value of `keys`, in the table's order."""
    numbered = table.append_column(_ROW, pa.array(np.arange(table.num_rows)))
    last = numbered.group_by(keys, use_threads=False).aggregate([(_ROW, "max")])
    return table.take(np.sort(last.column(f"{_ROW}_max").to_numpy()))
