"""The sync runner: checkpoints, failures mid-walk, state from the destination, views, types."""

from __future__ import annotations

import gc
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed
from sync_lake import HeldLake, LakeReader, assert_exact, make_lake, sync_options

from cgsync import ApiError, Lake, SyncOptions, _runner, run_sync
from cgsync._batches import BATCH_ROWS
from cgsync._checkpoints import walk_state
from cgsync._client import ApiClient, Page
from cgsync._dlt import duckdb_file_destination, is_duckdb_load_conflict
from cgsync._lake import DestinationLock, build_pipeline, destination_lock
from cgsync._tuning import load_one_job_at_a_time
from cgsync.emulator import Emulator
from cgsync.settings import ENV_DUCKDB_GLOBAL_CONFIG, READ_AHEAD_PAGES
from cgsync.source import SOURCE_NAME

ZONE = "America/New_York"


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lake]:
    with make_lake("duckdb", tmp_path) as lake:
        yield lake


def stored_cursor(lake: Lake, resource: str) -> Any:
    state = build_pipeline(lake).state["sources"][SOURCE_NAME]
    return walk_state(state, resource, "all").get("cursor")


def test_a_malformed_page_stops_its_resource_alone_and_keeps_the_pages_before_it(
    emulator: Callable[..., Emulator], lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = emulator(records=2_000)
    fetch = ApiClient.get_page
    responses_pages = 0

    def sixth_responses_page_malformed(self: ApiClient, endpoint: Any, **kwargs: Any) -> Page:
        nonlocal responses_pages
        page = fetch(self, endpoint, **kwargs)
        if endpoint.resource == "responses":
            responses_pages += 1
            if responses_pages == 6:
                page.records[3].pop("number_customergauge")
        return page

    monkeypatch.setattr(ApiClient, "get_page", sixth_responses_page_malformed)
    with pytest.raises(ApiError, match=r"^responses \(cursor 500\): malformed page: 1 record"):
        run_sync(sync_options(emu, lake, per_page=100, checkpoint_pages=2))

    # Pages 1-4 are two whole checkpoints; page 5 was committed when page 6 failed.
    assert stored_cursor(lake, "responses") == 500
    assert len(LakeReader(lake).cgids("responses")) == 500
    # The non-responses went on to the end of their cycle.
    state = build_pipeline(lake).state["sources"][SOURCE_NAME]
    assert walk_state(state, "non_responses", "all")["complete"] is True
    assert set(emu.truth().non_responses) <= set(LakeReader(lake).statuses())

    monkeypatch.setattr(ApiClient, "get_page", fetch)
    run_sync(sync_options(emu, lake))
    assert_exact(LakeReader(lake), emu.truth())


def test_cursors_come_back_from_the_destination_when_the_pipelines_dir_is_lost(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    emu = emulator(records=2_000)
    options = sync_options(emu, lake)
    run_sync(options)
    cursor = stored_cursor(lake, "responses")
    shutil.rmtree(str(lake.pipelines_dir))
    emu.clock.advance(timedelta(hours=12))

    summary = run_sync(options)

    assert summary.resources["responses"].pages == 2, "resumed at the stored cursor"
    assert stored_cursor(lake, "responses") >= cursor
    assert_exact(LakeReader(lake), emu.truth())


def test_the_summary_counts_pages_records_calls_and_checkpoints(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    emu = emulator(records=2_000)
    summary = run_sync(sync_options(emu, lake, per_page=250, checkpoint_pages=3))
    truth = emu.truth()

    pages = {name: resource.pages for name, resource in summary.resources.items()}
    records = {name: resource.records for name, resource in summary.resources.items()}
    assert records == {
        "responses": len(truth.responses),
        "non_responses": 2_000 - len(truth.responses),
    }
    # Each walk ends on an empty page.
    assert pages == {name: -(-count // 250) + 1 for name, count in records.items()}
    assert summary.checkpoints == -(-max(pages.values()) // 3)
    assert summary.token_calls == 1
    assert summary.row_counts["responses"] == len(truth.responses)
    assert summary.open_non_responses == len(truth.non_responses)


@pytest.mark.parametrize("parallel", [1, 2])
def test_behind_a_slow_api_a_checkpoint_ends_on_time_and_the_lake_is_exact(
    emulator: Callable[..., Emulator], lake: Lake, parallel: int
) -> None:
    emu = emulator(records=3_000)
    emu.faults.update(latency_ms=100)
    options = sync_options(
        emu, lake, per_page=100, checkpoint_pages=100, checkpoint_seconds=0.5, parallel=parallel
    )

    summary = run_sync(options)

    # By pages alone the 31 pages of non-responses would take one checkpoint.
    assert summary.resources["non_responses"].pages > 20
    assert summary.checkpoints >= 3
    assert_exact(LakeReader(lake), emu.truth())


def test_the_tables_have_the_documented_types_and_no_none_text(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    emu = emulator(records=2_000, timezone=ZONE)
    run_sync(sync_options(emu, lake, source_timezone=ZONE))
    reader = LakeReader(lake)
    query = (
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'customergauge' AND table_name = '{table}'"
    )

    def types(table: str) -> dict[str, str]:
        return dict(reader.rows(query.replace("{table}", table)))  # type: ignore[arg-type]

    shared = {
        "number_customergauge": "BIGINT",
        "number_customer": "VARCHAR",
        "number_order": "VARCHAR",
        "email": "VARCHAR",
        "phone": "VARCHAR",
        "language": "VARCHAR",
        "contact__first_name": "VARCHAR",
        "contact__last_name": "VARCHAR",
        "account__name": "VARCHAR",
        "account__number": "VARCHAR",
        "date_creation": "TIMESTAMP WITH TIME ZONE",
        "date_order": "TIMESTAMP WITH TIME ZONE",
        "date_email_sent": "TIMESTAMP WITH TIME ZONE",
        "_cgsync_synced_at": "TIMESTAMP WITH TIME ZONE",
        "properties__country": "VARCHAR",
        "properties__key_contact": "VARCHAR",
        "properties__account_manager_eu": "VARCHAR",
    }
    responses, non_responses = types("responses"), types("non_responses")
    assert (
        responses.items()
        >= {
            **shared,
            "nps": "BIGINT",
            "comment": "VARCHAR",
            "date_survey_response": "TIMESTAMP WITH TIME ZONE",
            "follow_up__requested": "BOOLEAN",
            "follow_up__details": "VARCHAR",
        }.items()
    )
    assert (
        non_responses.items()
        >= {
            **shared,
            "status": "VARCHAR",
            "date_sent": "TIMESTAMP WITH TIME ZONE",
            "date_opened": "TIMESTAMP WITH TIME ZONE",
            "date_clicked": "TIMESTAMP WITH TIME ZONE",
            "link": "VARCHAR",
        }.items()
    )
    assert types("responses__tags") == {
        "number_customergauge": "BIGINT",
        "position": "BIGINT",
        "value": "VARCHAR",
    }
    for table, columns in (("responses", responses), ("non_responses", non_responses)):
        for column, data_type in columns.items():
            if data_type == "VARCHAR":
                nones = reader.rows(
                    f"SELECT COUNT(*) FROM {{t}} WHERE \"{column}\" IN ('None', 'null', 'nan')",
                    t=table,
                )
                assert nones == [(0,)], f"{table}.{column} holds the text of a null"


def test_survey_funnel_has_one_row_per_cgid_with_its_dates_status_and_nps(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    emu = emulator(records=2_000)
    run_sync(sync_options(emu, lake))
    emu.clock.advance(timedelta(days=3))
    run_sync(sync_options(emu, lake))
    reader = LakeReader(lake)
    truth = emu.truth()

    funnel = {
        row[0]: row[1:]
        for row in reader.rows(
            "SELECT number_customergauge, status, failed, nps, date_responded, date_sent FROM {f}",
            f="survey_funnel",
        )
    }
    assert set(funnel) == set(truth.non_responses) | set(truth.responses)
    assert {cgid for cgid, row in funnel.items() if row[0] == "responded"} == set(truth.responses)
    failed = {
        cgid
        for cgid, status in truth.non_responses.items()
        if status in {"bounced", "undeliverable", "blocked"}
    }
    assert failed, "the emulator produced failures to check"
    assert {cgid for cgid, row in funnel.items() if row[1]} == failed
    nps = dict(reader.rows("SELECT number_customergauge, nps FROM {r}", r="responses"))
    assert {cgid: row[2] for cgid, row in funnel.items() if row[0] == "responded"} == nps
    assert all(row[4] is not None for row in funnel.values())
    assert "properties__country" in dict(
        reader.rows(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'survey_funnel'"
        )
    )


def test_options_never_show_a_secret_or_a_database_password() -> None:
    destination = dlt.destinations.postgres("postgresql://loader:db-pa55word@db:5432/lake")
    options = SyncOptions(client_secret="api-s3cret", lake=Lake(destination))

    shown = repr(options)

    assert "api-s3cret" not in shown
    assert "db-pa55word" not in shown
    assert "destination='postgres'" in shown


def test_memory_stays_bounded_by_pages_in_flight_not_by_records_synced(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    """Arrow memory, sampled at every page of a sync of 27 checkpoints, never exceeds what the
    pages in flight can hold: read ahead, one batch, one page being built (per resource)."""
    emu = emulator(records=60_000, seed=5)
    per_page = 500
    pages_in_flight = READ_AHEAD_PAGES + BATCH_ROWS // per_page + 2
    page_bytes = 400 * per_page  # an emulator record takes about 250 bytes of Arrow
    bound = 2 * pages_in_flight * page_bytes  # two resources side by side
    gc.collect()
    before = pa.total_allocated_bytes()
    samples: list[int] = []

    def sample(resource: str, records: int) -> None:
        samples.append(pa.total_allocated_bytes() - before)

    summary = run_sync(
        sync_options(emu, lake, per_page=per_page, checkpoint_pages=3), on_page=sample
    )

    assert summary.checkpoints > 20 and sum(r.records for r in summary.resources.values()) > 0
    assert max(samples) < bound, f"{max(samples):,} bytes of Arrow, at most {bound:,} expected"
    assert_exact(LakeReader(lake), emu.truth())


def test_a_load_whose_jobs_conflict_is_loaded_again_one_job_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")  # dlt gives up at the first retry
    monkeypatch.delenv("LOAD__WORKERS", raising=False)
    held = HeldLake(tmp_path)

    def other_done_then_one_at_a_time() -> bool:
        held.other.rollback()  # the job it conflicted with is over when the sync loads again
        return load_one_job_at_a_time()

    monkeypatch.setattr(_runner, "load_one_job_at_a_time", other_done_then_one_at_a_time)
    _runner._run_within_memory(held.pipeline, held.rows(v="b"))

    assert held.values() == [(1, "b")]
    assert os.environ["LOAD__WORKERS"] == "1"


def test_a_merge_after_a_delete_that_ran_out_of_memory_loads_once_duckdb_starts_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DuckDB keeps the marks of a DELETE that ran out of memory while its database is open, and
    # the sync's lock holds it open: a later merge of those rows conflicts until it restarts.
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")
    monkeypatch.delenv("LOAD__WORKERS", raising=False)  # the one step left: one job at a time
    monkeypatch.delenv(ENV_DUCKDB_GLOBAL_CONFIG, raising=False)
    pipeline = dlt.pipeline(
        "aborted",
        destination=duckdb_file_destination(tmp_path / "aborted.duckdb"),
        dataset_name="lake",
        pipelines_dir=str(tmp_path / "pipelines"),
    )

    def rows(ids: range, v: str) -> Any:
        records = [{"id": i, "v": v} for i in ids]
        return dlt.resource(records, name="t", write_disposition="merge", primary_key="id")

    size = 2_000_000
    pipeline.run(rows(range(1), v="a"))
    with destination_lock(pipeline) as lock:
        with pipeline.sql_client() as sql:  # the database the lock holds open
            sql.execute_sql(
                "CREATE OR REPLACE TABLE t AS SELECT range AS id, range::VARCHAR AS v, "
                f"'filler' AS _dlt_load_id, range::VARCHAR AS _dlt_id FROM range({size})"
            )
            sql.execute_sql(
                f"CREATE TABLE doomed AS SELECT range AS id FROM range({size // 2}, {size + size // 2})"
            )
            sql.execute_sql("CHECKPOINT")
            job = sql.native_connection.duplicate()  # as a merge job ran at 10M records
            job.execute("SET search_path = 'lake'")
            job.execute("SET threads = 1")
            job.execute("SET memory_limit = '20MB'")
            job.begin()
            with pytest.raises(duckdb.OutOfMemoryException):
                job.execute("DELETE FROM t WHERE id IN (SELECT id FROM doomed)")
            job.rollback()
            job.execute("RESET memory_limit")
            job.close()

        _runner._run_within_memory(pipeline, rows(range(size - 10_000, size), v="b"), lock=lock)

    with pipeline.sql_client() as sql:
        counts = "SELECT count(*), count(DISTINCT id), count(*) FILTER (v = 'b') FROM t"
        assert sql.execute_sql(counts) == [(size, size, 10_000)]


def test_a_conflicting_load_with_nothing_left_to_change_fails_with_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")
    monkeypatch.setenv("LOAD__WORKERS", "2")  # the user's own
    monkeypatch.delenv(ENV_DUCKDB_GLOBAL_CONFIG, raising=False)  # no limit of the sync's
    held = HeldLake(tmp_path)

    with pytest.raises(PipelineStepFailed) as failed:
        _runner._run_within_memory(held.pipeline, held.rows(v="b"))

    assert is_duckdb_load_conflict(failed.value)
    assert os.environ["LOAD__WORKERS"] == "2"
    held.other.rollback()
    assert held.values() == [(1, "a")]


def test_the_lake_is_counted_after_duckdb_wrote_its_loads_into_the_file(
    emulator: Callable[..., Emulator], lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a load leaves in DuckDB's write-ahead log stays in its memory limit too: after a
    # 10M-record full refresh, too little of it was left to count the open non-responses.
    emu = emulator(records=2_000)
    database = Path(build_pipeline(lake).destination_client().config.credentials.database)
    wal = database.with_name(database.name + ".wal")
    wal_at_counts = []
    finish = _runner._finish

    def counting(pipeline: dlt.Pipeline, summary: Any) -> None:
        wal_at_counts.append(wal.stat().st_size if wal.exists() else 0)
        finish(pipeline, summary)

    monkeypatch.setattr(_runner, "_finish", counting)
    run_sync(sync_options(emu, lake, checkpoint_pages=2))

    assert wal_at_counts == [0]
    assert_exact(LakeReader(lake), emu.truth())


def test_a_checkpoint_duckdb_refuses_is_a_warning_and_the_sync_goes_on(
    emulator: Callable[..., Emulator],
    lake: Lake,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = emulator(records=500)
    acquire = DestinationLock.acquire

    def acquire_with_a_refusing_checkpoint(self: DestinationLock) -> None:
        acquire(self)
        execute = self._client.execute_sql

        def execute_sql(sql: str, *args: Any, **kwargs: Any) -> Any:
            if sql == "CHECKPOINT":
                raise duckdb.TransactionException("Cannot CHECKPOINT: there are other transactions")
            return execute(sql, *args, **kwargs)

        self._client.execute_sql = execute_sql

    monkeypatch.setattr(DestinationLock, "acquire", acquire_with_a_refusing_checkpoint)
    with caplog.at_level(logging.WARNING, logger="cgsync"):
        summary = run_sync(sync_options(emu, lake))

    skipped = [
        r for r in caplog.records if getattr(r, "event", None) == "duckdb_checkpoint_skipped"
    ]
    assert len(skipped) == 1 and "other transactions" in skipped[0].getMessage()
    assert summary.row_counts["responses"] == len(emu.truth().responses)
    assert_exact(LakeReader(lake), emu.truth())
