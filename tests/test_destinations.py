"""Each destination by name: the views on SQL destinations, status and counts on Delta."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sync_lake import LakeReader, make_lake, sync_options

from cgsync._pipeline import Lake, build_pipeline, read_status, run_sync
from cgsync.emulator import Emulator
from cgsync.source import STAGING_DEDUPLICATED_HINT

DATA_TABLES = ("responses", "responses__tags", "non_responses")


@pytest.fixture(params=("duckdb", "postgres"))
def sql_lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lake]:
    with make_lake(request.param, tmp_path) as lake:
        yield lake


def test_the_views_match_the_api_on_sql_destinations(
    emulator: Callable[..., Emulator], sql_lake: Lake
) -> None:
    emu = emulator(records=1_500)
    run_sync(sync_options(emu, sql_lake))
    emu.clock.advance(timedelta(days=2))
    run_sync(sync_options(emu, sql_lake))
    truth = emu.truth()
    reader = LakeReader(sql_lake)

    open_cgids = reader.cgids("open_non_responses")
    assert sorted(open_cgids) == sorted(truth.non_responses)
    funnel = reader.cgids("survey_funnel")
    assert sorted(funnel) == sorted(set(truth.non_responses) | set(truth.responses))


def test_only_duckdb_merges_skip_the_staging_deduplication(
    emulator: Callable[..., Emulator], sql_lake: Lake
) -> None:
    # A DuckDB load job is one local statement, run again only after a kill (which turns the
    # deduplication back on); a network destination may report a committed job as failed.
    run_sync(sync_options(emulator(records=500), sql_lake))

    tables = build_pipeline(sql_lake).default_schema.tables
    skipped = {name: tables[name].get(STAGING_DEDUPLICATED_HINT) for name in DATA_TABLES}
    duckdb = sql_lake.destination.destination_type.endswith(".duckdb")
    assert skipped == dict.fromkeys(DATA_TABLES, duckdb)


def test_status_reads_cursors_and_counts_from_delta_tables(
    emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = emulator(records=1_500)
    with make_lake("delta", tmp_path) as lake:
        summary = run_sync(sync_options(emu, lake))
        status = read_status(lake)
    truth = emu.truth()

    assert status["destination"] == "filesystem"
    assert status["cursors"]["non_responses"]["all"] == {"cursor": 1_500, "complete": True}
    assert status["row_counts"]["responses"] == len(truth.responses)
    assert status["open_non_responses"] == summary.open_non_responses == len(truth.non_responses)
    assert (tmp_path / "lake" / "customergauge" / "responses" / "_delta_log").is_dir()
