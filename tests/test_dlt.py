"""Contract tests of cgsync's uses of dlt beyond its public API (cgsync._dlt).

Each fails when a dlt release changes what cgsync relies on; the guards' fallbacks are tested
too. pyproject pins dlt to the releases these ran on.
"""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys
from pathlib import Path

import dlt
import duckdb
import pyarrow as pa
import pytest
from dlt.common.schema.typing import MERGE_DISPOSITION_HINTS
from dlt.destinations.impl.filesystem.filesystem import FilesystemClient
from dlt.destinations.sql_jobs import SqlMergeFollowupJob
from dlt.load.exceptions import LoadClientJobRetry
from dlt.pipeline.exceptions import PipelineStepFailed
from sync_lake import HeldLake, merge_sql

from cgsync import _dlt
from cgsync._dlt import (
    MERGE_KEY_ONLY_HINT,
    STAGING_DEDUPLICATED_HINT,
    destination_kind,
    dlt_pipelines_dir,
    duckdb_file_destination,
    duckdb_lock_conflict,
    install_merge_key_only,
    is_duckdb_load_conflict,
    is_duckdb_out_of_memory,
    merge_key_only,
    merge_patch_supported,
    read_only_duckdb,
    reset_staging_deduplicated,
    sync_destination_once,
)

DELETE_COMPLETED_JOBS = "LOAD__DELETE_COMPLETED_JOBS"


@pytest.fixture
def dlt_merge_sql(monkeypatch: pytest.MonkeyPatch) -> None:
    """dlt's own merge job, as before cgsync patched it; restored after the test."""
    for name in ("_gen_key_table_clauses", "gen_merge_sql"):
        monkeypatch.setattr(SqlMergeFollowupJob, name, classmethod(_dlt._dlt_function(name)))


def delete_condition(primary_keys: list[str], merge_keys: list[str]) -> str:
    [clause] = SqlMergeFollowupJob.gen_key_table_clauses(
        "dest", "stage", primary_keys, merge_keys, for_delete=True
    )
    return clause


def tmp_pipeline(tmp_path: Path, name: str) -> dlt.Pipeline:
    return dlt.pipeline(
        name,
        destination=dlt.destinations.duckdb(str(tmp_path / f"{name}.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
    )


# -- The merge key alone -----------------------------------------------------------------------


def test_the_merge_patch_wraps_what_this_dlt_has() -> None:
    assert merge_patch_supported()
    assert install_merge_key_only()
    assert install_merge_key_only()  # idempotent


def test_a_merge_key_within_the_primary_key_is_the_only_condition() -> None:
    install_merge_key_only()

    with merge_key_only():
        assert delete_condition(['"cgid"', '"position"'], ['"cgid"']) == (
            'FROM dest as d WHERE EXISTS (SELECT 1 FROM stage as s WHERE d."cgid" = s."cgid")'
        )


def test_other_keys_keep_both_conditions() -> None:
    install_merge_key_only()

    with merge_key_only():
        assert " OR " in delete_condition(['"cgid"', '"position"'], ['"day"'])
        assert delete_condition(['"cgid"'], []).endswith('WHERE d."cgid" = s."cgid")')


def test_outside_cgsync_tables_dlt_keeps_its_own_merge_sql() -> None:
    install_merge_key_only()

    assert " OR " in delete_condition(['"cgid"', '"position"'], ['"cgid"'])


def tags(rows: list[tuple[int, int, str]], *, hinted: bool) -> dlt.sources.DltResource:
    cgid, position, value = (list(column) for column in zip(*rows, strict=True))
    table = pa.table({"cgid": cgid, "position": position, "value": value})
    resource = dlt.resource(
        [table], name="tags", write_disposition="merge",
        primary_key=["cgid", "position"], merge_key="cgid",
    )  # fmt: skip
    if hinted:
        resource.apply_hints(additional_table_hints={MERGE_KEY_ONLY_HINT: True})
    return resource


@pytest.mark.parametrize("hinted", [True, False], ids=["cgsync table", "another table"])
def test_a_merge_replaces_every_row_of_a_merge_key_in_one_plain_join(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hinted: bool
) -> None:
    monkeypatch.setenv(DELETE_COMPLETED_JOBS, "false")  # the merge SQL is read from its job file
    install_merge_key_only()
    pipeline = tmp_pipeline(tmp_path, "merge")

    pipeline.run(tags([(1, 0, "Price"), (1, 1, "Speed"), (2, 0, "Staff")], hinted=hinted))
    pipeline.run(tags([(1, 0, "Speed")], hinted=hinted))

    with pipeline.sql_client() as sql:
        rows = sql.execute_sql("SELECT cgid, position, value FROM tags ORDER BY cgid, position")
    assert [tuple(row) for row in rows] == [(1, 0, "Speed"), (2, 0, "Staff")]
    merges = merge_sql(pipeline, "tags")
    assert len(merges) == 2 and all("DELETE FROM" in merge for merge in merges)
    # Only cgsync's own tables lose the implied condition: other pipelines keep dlt's SQL.
    assert bool([merge for merge in merges if " OR " in merge]) is not hinted


def test_a_changed_merge_job_is_left_alone(
    dlt_merge_sql: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def gen_merge_sql(cls: object, table_chain: object, sql_client: object, extra: int) -> list:
        return []

    monkeypatch.setattr(SqlMergeFollowupJob, "gen_merge_sql", classmethod(gen_merge_sql))

    with caplog.at_level(logging.WARNING, logger="cgsync"):
        assert not install_merge_key_only()

    assert "dlt's own SQL" in caplog.text
    assert inspect.getattr_static(SqlMergeFollowupJob, "gen_merge_sql").__func__ is gen_merge_sql
    with merge_key_only():
        assert " OR " in delete_condition(['"cgid"', '"position"'], ['"cgid"'])


# -- Staging deduplication of load packages ------------------------------------------------------


def test_the_deduplication_hint_is_dlts_own() -> None:
    assert MERGE_DISPOSITION_HINTS["deduplicated"] == STAGING_DEDUPLICATED_HINT
    assert STAGING_DEDUPLICATED_HINT in inspect.getsource(SqlMergeFollowupJob)


def normalized_package(tmp_path: Path) -> dlt.Pipeline:
    """A pipeline with one normalized package whose table skips the staging deduplication."""
    pipeline = tmp_pipeline(tmp_path, "packages")
    resource = dlt.resource(
        [{"cgid": 1}], name="rows", write_disposition="merge", primary_key="cgid"
    )
    resource.apply_hints(additional_table_hints={STAGING_DEDUPLICATED_HINT: True})
    pipeline.extract(resource)
    pipeline.normalize()
    return pipeline


def package_hints(pipeline: dlt.Pipeline) -> list[object]:
    packages = pipeline._get_load_storage().normalized_packages
    [load_id] = pipeline.list_normalized_load_packages()
    return [packages.load_schema(load_id).tables["rows"].get(STAGING_DEDUPLICATED_HINT)]


def test_resumed_packages_deduplicate_their_staging(tmp_path: Path) -> None:
    pipeline = normalized_package(tmp_path)
    assert package_hints(pipeline) == [True]

    assert reset_staging_deduplicated(pipeline)

    assert package_hints(pipeline) == [False]
    pipeline.load()
    with pipeline.sql_client() as sql:
        assert sql.execute_sql("SELECT cgid FROM rows") == [(1,)]


def test_without_a_way_to_change_packages_nothing_skips_the_deduplication(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = normalized_package(tmp_path)
    monkeypatch.delattr(dlt.Pipeline, "_get_load_storage")

    assert not reset_staging_deduplicated(pipeline)


# -- Destinations and the errors dlt wraps ------------------------------------------------------


def test_destination_kinds(tmp_path: Path) -> None:
    assert destination_kind(dlt.destinations.duckdb(str(tmp_path / "a.duckdb"))) == "duckdb"
    assert destination_kind(dlt.destinations.postgres("postgresql://u:p@h/db")) == "postgres"
    assert destination_kind(dlt.destinations.filesystem(str(tmp_path))) == "filesystem"
    assert destination_kind(dlt.destinations.dummy()) == "dummy"


def test_a_duckdb_file_destination_is_resolved_without_parsing_a_connection_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dlt.common.configuration.specs import ConnectionStringCredentials

    parsed: list[object] = []
    parse = ConnectionStringCredentials.parse_native_representation
    monkeypatch.setattr(
        ConnectionStringCredentials,
        "parse_native_representation",
        lambda self, value: parsed.append(value) or parse(self, value),
    )
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"threads": 1}')
    destination = duckdb_file_destination(tmp_path / "lake.duckdb")

    for _ in range(3):  # dlt resolves a destination again at every step
        config = destination.configuration(destination.spec(), accept_partial=True)

    assert parsed == []
    assert config.credentials.database == str(tmp_path / "lake.duckdb")
    # Everything but the path still comes from dlt's config.
    assert config.credentials.global_config == {"threads": 1}
    assert config.credentials.read_only is False


def test_duckdb_running_out_of_memory_is_recognised() -> None:
    connection = duckdb.connect(config={"memory_limit": "2MB", "threads": 1})
    with pytest.raises(duckdb.Error) as raised:
        connection.execute(
            "SELECT list(range) FROM range(10000000) GROUP BY range % 1000"
        ).fetchall()

    assert not is_duckdb_out_of_memory(RuntimeError("load failed"))
    wrapped = RuntimeError("load failed")
    wrapped.__cause__ = raised.value
    assert is_duckdb_out_of_memory(wrapped)


def test_a_load_job_that_dlt_gave_up_retrying_is_recognised_by_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")  # dlt gives up at the first retry
    held = HeldLake(tmp_path)

    with pytest.raises(PipelineStepFailed) as failed:
        held.pipeline.run(held.rows(v="b"))

    # dlt keeps the job's error in LoadClientJobRetry.client_exception, not in the chain.
    assert is_duckdb_load_conflict(failed.value)
    assert not is_duckdb_out_of_memory(failed.value)
    assert not is_duckdb_load_conflict(RuntimeError("load failed"))
    out_of_memory = duckdb.OutOfMemoryException("Out of Memory Error: failed to pin block")
    given_up = LoadClientJobRetry("1", "t.sql", 5, 5, "Traceback (most recent ...", out_of_memory)
    assert is_duckdb_out_of_memory(given_up)


def test_a_duckdb_file_held_by_another_process_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    hold = f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('held', flush=True)"
    holder = subprocess.Popen(
        [sys.executable, "-c", hold + "; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.Error) as raised:
            duckdb.connect(str(path))
    finally:
        holder.communicate("")

    assert duckdb_lock_conflict(raised.value) is raised.value
    assert duckdb_lock_conflict(RuntimeError("another failure")) is None


def test_the_report_opens_duckdb_read_only(tmp_path: Path) -> None:
    path = tmp_path / "lake.duckdb"
    duckdb.connect(str(path)).execute("CREATE TABLE t AS SELECT 1 AS x").close()
    pipeline = dlt.pipeline(
        "reader", destination=read_only_duckdb(path), pipelines_dir=str(tmp_path / "p")
    )

    with pipeline.sql_client() as sql:
        assert sql.execute_sql("SELECT x FROM main.t") == [(1,)]
        with pytest.raises(Exception, match="read-only"):
            sql.execute_sql("CREATE TABLE main.u (x INT)")


# -- The lake's state, restored once ------------------------------------------------------------


def counted_restores(pipeline: dlt.Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per time `pipeline` reads its state from the destination, from now on."""
    restores: list[int] = []
    restore = pipeline._restore_state_from_destination
    monkeypatch.setattr(
        pipeline, "_restore_state_from_destination", lambda: restores.append(1) or restore()
    )
    return restores


@pytest.mark.parametrize("once", [True, False])
def test_a_pipeline_synced_once_is_not_synced_again_by_its_first_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, once: bool
) -> None:
    tmp_pipeline(tmp_path, "synced").run([{"id": 1}], table_name="t")  # a lake with a state
    pipeline = tmp_pipeline(tmp_path, "synced")
    restores = counted_restores(pipeline, monkeypatch)

    sync_destination_once(pipeline) if once else pipeline.sync_destination()
    pipeline.run([{"id": 2}], table_name="t")

    # Without the flag, dlt's run reads the state again: the round trip the flag saves.
    assert len(restores) == (1 if once else 2)
    with pipeline.sql_client() as sql:
        assert sorted(sql.execute_sql("SELECT id FROM t")) == [(1,), (2,)]


def test_a_dlt_without_the_flag_is_left_to_restore_the_state_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = tmp_pipeline(tmp_path, "unflagged")
    monkeypatch.delattr(pipeline, "_state_restored")

    sync_destination_once(pipeline)

    assert not hasattr(pipeline, "_state_restored")


def test_the_pipelines_directory_follows_dlts_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path))

    assert dlt_pipelines_dir() == tmp_path / "pipelines"


# -- Open table formats -------------------------------------------------------------------------


def test_the_table_format_helpers_take_a_pipeline_and_table_names() -> None:
    from dlt.common.libs.deltalake import get_delta_tables
    from dlt.common.libs.pyiceberg import get_iceberg_tables  # what _dlt.iceberg_tables calls

    for helper in (get_delta_tables, get_iceberg_tables):
        parameters = list(inspect.signature(helper).parameters.values())
        assert parameters[0].name == "pipeline"
        assert parameters[1].kind is inspect.Parameter.VAR_POSITIONAL


def test_the_filesystem_client_opens_an_iceberg_catalog() -> None:
    parameters = inspect.signature(FilesystemClient.get_open_table_catalog).parameters
    assert list(parameters)[:2] == ["self", "table_format"]
