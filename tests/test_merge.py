"""dlt's merge SQL: a merge key within the primary key is the only condition on the rows."""

from __future__ import annotations

from pathlib import Path

import dlt
import pyarrow as pa
import pytest
from dlt.destinations.sql_jobs import SqlMergeFollowupJob
from sync_lake import merge_sql

from cgsync._merge import drop_implied_key_conditions

DELETE_COMPLETED_JOBS = "LOAD__DELETE_COMPLETED_JOBS"


def delete_condition(primary_keys: list[str], merge_keys: list[str]) -> str:
    [clause] = SqlMergeFollowupJob.gen_key_table_clauses(
        "dest", "stage", primary_keys, merge_keys, for_delete=True
    )
    return clause


def test_a_merge_key_within_the_primary_key_is_the_only_condition() -> None:
    drop_implied_key_conditions()

    assert delete_condition(['"cgid"', '"position"'], ['"cgid"']) == (
        'FROM dest as d WHERE EXISTS (SELECT 1 FROM stage as s WHERE d."cgid" = s."cgid")'
    )


def test_other_keys_keep_both_conditions() -> None:
    drop_implied_key_conditions()

    assert " OR " in delete_condition(['"cgid"', '"position"'], ['"day"'])
    assert delete_condition(['"cgid"'], []).endswith('WHERE d."cgid" = s."cgid")')


def test_a_merge_replaces_every_row_of_a_merge_key_in_one_plain_join(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DELETE_COMPLETED_JOBS, "false")  # the merge SQL is read from its job file
    drop_implied_key_conditions()
    pipeline = dlt.pipeline(
        "merge",
        destination=dlt.destinations.duckdb(str(tmp_path / "lake.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
    )

    def tags(rows: list[tuple[int, int, str]]) -> dlt.sources.DltResource:
        cgid, position, value = (list(column) for column in zip(*rows, strict=True))
        table = pa.table({"cgid": cgid, "position": position, "value": value})
        return dlt.resource(
            [table], name="tags", write_disposition="merge",
            primary_key=["cgid", "position"], merge_key="cgid",
        )  # fmt: skip

    pipeline.run(tags([(1, 0, "Price"), (1, 1, "Speed"), (2, 0, "Staff")]))
    pipeline.run(tags([(1, 0, "Speed")]))

    with pipeline.sql_client() as sql:
        rows = sql.execute_sql("SELECT cgid, position, value FROM tags ORDER BY cgid, position")
    assert [tuple(row) for row in rows] == [(1, 0, "Speed"), (2, 0, "Staff")]
    merges = merge_sql(pipeline, "tags")
    assert len(merges) == 2 and all("DELETE FROM" in merge for merge in merges)
    assert not [merge for merge in merges if " OR " in merge]
