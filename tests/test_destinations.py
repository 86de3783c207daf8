"""Each destination by name: the views on SQL destinations, status and counts on Delta and
Iceberg tables."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import dlt
import pytest
from sync_lake import ICEBERG_CATALOG, LakeReader, make_lake, sync_options

from cgsync import ApiError, Lake, read_status, run_sync
from cgsync._dlt import STAGING_DEDUPLICATED_HINT
from cgsync._lake import build_pipeline
from cgsync._tables import CHILD_ROW_KEY
from cgsync.emulator import Emulator

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


@pytest.mark.parametrize(("kind", "marker"), [("delta", "_delta_log"), ("iceberg", "metadata")])
def test_status_reads_cursors_and_counts_from_open_tables(
    emulator: Callable[..., Emulator], tmp_path: Path, kind: str, marker: str
) -> None:
    emu = emulator(records=1_500)
    with make_lake(kind, tmp_path) as lake:
        summary = run_sync(sync_options(emu, lake))
        status = read_status(lake)
    truth = emu.truth()

    assert status["destination"] == "filesystem"
    assert status["cursors"]["non_responses"]["all"] == {"cursor": 1_500, "complete": True}
    assert status["row_counts"]["responses"] == len(truth.responses)
    assert status["open_non_responses"] == summary.open_non_responses == len(truth.non_responses)
    assert status["last_run"]["outcome"] == "ok"
    assert (tmp_path / "lake" / "customergauge" / "responses" / marker).is_dir()


def test_iceberg_tables_are_registered_in_the_configured_catalog(
    emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    from pyiceberg.catalog import load_catalog

    emu = emulator(records=500)
    with make_lake("iceberg", tmp_path) as lake:
        run_sync(sync_options(emu, lake))
        catalog = load_catalog("default", **json.loads(os.environ[ICEBERG_CATALOG]))

    tables = {name for _, name in catalog.list_tables(lake.dataset)}
    assert {"responses", "responses__tags", "non_responses"} <= tables
    responses = catalog.load_table(f"{lake.dataset}.responses").scan().to_arrow()
    assert sorted(responses["number_customergauge"].to_pylist()) == sorted(emu.truth().responses)
    tags = catalog.load_table(f"{lake.dataset}.responses__tags").scan().to_arrow().to_pylist()
    keys = [row[CHILD_ROW_KEY] for row in tags]
    assert keys == [f"{row['number_customergauge']}/{row['position']}" for row in tags]
    assert len(set(keys)) == len(keys), "the upsert's one-column key"


def test_an_iceberg_catalog_that_cannot_be_opened_is_one_line_exit_4(
    emulator: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = emulator(records=100)
    missing = tmp_path / "no-such-directory" / "catalog.db"
    config = {"type": "sql", "uri": f"sqlite:///{missing}", "warehouse": f"file://{tmp_path}"}
    monkeypatch.setenv(ICEBERG_CATALOG, json.dumps(config))
    lake = Lake(
        dlt.destinations.filesystem(str(tmp_path / "lake")),
        pipelines_dir=str(tmp_path / "pipelines"),
        table_format="iceberg",
    )

    with pytest.raises(ApiError, match=r"^cannot open the Iceberg catalog .*unable to open"):
        run_sync(sync_options(emu, lake))
    assert not (tmp_path / "lake").exists(), "nothing written"
