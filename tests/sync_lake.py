"""Lakes for the sync tests (a DuckDB file, PostgreSQL, Delta and Iceberg tables) and how to
check them."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from cgsync import Lake, SyncOptions
from cgsync._client import ApiClient
from cgsync._lake import build_pipeline
from cgsync._lake_sql import lake_sql
from cgsync._views import NON_RESPONSES, open_non_responses_sql
from cgsync.emulator import Emulator, Truth

DESTINATIONS = ("duckdb", "postgres", "delta")
EVERY_FORMAT = (*DESTINATIONS, "iceberg")
"""Iceberg loads are slow (dlt upserts through pyiceberg, a commit per 1,000 rows), so Iceberg
joins the lakes of the tests that prove a format exact: initial and periodic runs, reconcile."""
POSTGRES_DSN = "CGSYNC_TEST_POSTGRES_DSN"
EVERY_FAULT = {
    "rate_429": 0.1,
    "rate_5xx": 0.1,
    "rate_drop": 0.05,
    "rate_truncate": 0.05,
    "retry_after_seconds": 0,
    "token_ttl_seconds": 1,
}
"""Every fault of the emulator at once, often, with tokens that expire each second."""
ICEBERG_CATALOG = "ICEBERG_CATALOG__ICEBERG_CATALOG_CONFIG"
"""dlt's setting of the Iceberg catalog (pyiceberg's `load_catalog` properties, as JSON)."""


def postgres_dsn() -> str:
    """The test server's DSN; skip without one, but fail in CI, where it must exist."""
    dsn = os.environ.get(POSTGRES_DSN)
    if not dsn:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{POSTGRES_DSN} is not set: CI must test PostgreSQL")
        pytest.skip(f"{POSTGRES_DSN} is not set")
    return dsn


@contextmanager
def make_lake(kind: str, tmp_path: Path) -> Iterator[Lake]:
    """A fresh, empty lake of `kind` (one of DESTINATIONS); PostgreSQL datasets are dropped after."""
    pipelines_dir = str(tmp_path / "pipelines")
    if kind == "duckdb":
        yield Lake(
            dlt.destinations.duckdb(str(tmp_path / "lake.duckdb")), pipelines_dir=pipelines_dir
        )
    elif kind == "delta":
        yield Lake(dlt.destinations.filesystem(str(tmp_path / "lake")), pipelines_dir=pipelines_dir)
    elif kind == "iceberg":
        with iceberg_catalog(tmp_path):
            yield Lake(
                dlt.destinations.filesystem(str(tmp_path / "lake")),
                pipelines_dir=pipelines_dir,
                table_format="iceberg",
            )
    elif kind == "postgres":
        dataset = f"cgsync_test_{uuid.uuid4().hex[:10]}"
        lake = Lake(dlt.destinations.postgres(postgres_dsn()), dataset, pipelines_dir=pipelines_dir)
        try:
            yield lake
        finally:
            drop_datasets(lake)
    else:
        raise ValueError(f"unknown lake kind {kind!r}")


@contextmanager
def iceberg_catalog(tmp_path: Path) -> Iterator[Path]:
    """A local SQL catalog (SQLite) for the Iceberg tables, set in dlt's config while open."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    database = tmp_path / "iceberg-catalog.db"
    config = {"type": "sql", "uri": f"sqlite:///{database}", "warehouse": f"file://{tmp_path}"}
    before = os.environ.get(ICEBERG_CATALOG)
    os.environ[ICEBERG_CATALOG] = json.dumps(config)
    try:
        yield database
    finally:
        if before is None:
            os.environ.pop(ICEBERG_CATALOG, None)
        else:
            os.environ[ICEBERG_CATALOG] = before


def drop_datasets(lake: Lake) -> None:
    """Drop a PostgreSQL lake's dataset and its staging dataset."""
    with build_pipeline(lake).sql_client() as sql:
        for schema in (lake.dataset, f"{lake.dataset}_staging"):
            sql.execute_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def merge_sql(pipeline: dlt.Pipeline, table: str) -> list[str]:
    """The SQL of every merge of `table` that `pipeline` loaded (its kept job files: set
    LOAD__DELETE_COMPLETED_JOBS=false)."""
    loaded = Path(pipeline.pipelines_dir, pipeline.pipeline_name, "load", "loaded")
    return [job.read_text() for job in loaded.glob(f"*/completed_jobs/{table}.*.sql")]


def emulator_client(emulator: Emulator, **options: Any) -> ApiClient:
    """An ApiClient of `emulator` (`options`: ApiClient's, e.g. `retry`, `transport`)."""
    return ApiClient(
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        auth_url=emulator.token_url,
        api_url=emulator.base_url,
        **options,
    )


def sync_options(emulator: Emulator, lake: Lake, **changes: Any) -> SyncOptions:
    """Options that sync `emulator` into `lake`."""
    connection: dict[str, Any] = {
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "auth_url": emulator.token_url,
        "api_url": emulator.base_url,
        "lake": lake,
    }
    return SyncOptions(**{**connection, **changes})


class LakeReader:
    """Reads a lake through the sync's own SQL access (DuckDB over the files for Delta)."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def pipeline(self) -> dlt.Pipeline:
        """The lake's pipeline; one on a fresh machine first learns the lake's schema from it."""
        pipeline = build_pipeline(self.lake)
        if not pipeline.default_schema_name:
            pipeline.sync_destination()
        return pipeline

    def rows(self, query: str, **tables: str) -> list[tuple[Any, ...]]:
        """Rows of `query`, whose `{name}` placeholders become quoted table names."""
        with lake_sql(self.pipeline()) as sql:
            return sql.rows(query.format(**{name: sql.table(t) for name, t in tables.items()}))

    def cgids(self, table: str) -> list[int]:
        return [cgid for (cgid,) in self.rows("SELECT number_customergauge FROM {t}", t=table)]

    def statuses(self) -> dict[int, str]:
        query = "SELECT number_customergauge, status FROM {t}"
        return {cgid: status for cgid, status in self.rows(query, t=NON_RESPONSES)}

    def open_cgids(self) -> set[int]:
        with lake_sql(self.pipeline()) as sql:
            query = open_non_responses_sql(sql.table, sql.column, "responses")
            return {
                cgid for (cgid,) in sql.rows(f"SELECT number_customergauge FROM ({query}) AS o")
            }


def assert_exact(
    reader: LakeReader,
    truth: Truth,
    *,
    responses: str = "responses",
    refresh_window: timedelta = timedelta(hours=72),
) -> None:
    """The lake equals the API: same CGIDs, no duplicates, statuses equal within the window."""
    lake_responses = reader.cgids(responses)
    assert len(lake_responses) == len(set(lake_responses)), "duplicate responses"
    assert set(lake_responses) == set(truth.responses)

    statuses = reader.statuses()
    assert len(statuses) == len(reader.cgids(NON_RESPONSES)), "duplicate non-responses"
    assert set(truth.non_responses) <= set(statuses), "an unanswered invitation is missing"
    assert set(statuses) <= set(truth.non_responses) | set(truth.responses)
    if responses == "responses":
        assert reader.open_cgids() == set(truth.non_responses)

    newest = max(truth.date_sent[cgid] for cgid in statuses)
    recent = {
        cgid for cgid in truth.non_responses if truth.date_sent[cgid] >= newest - refresh_window
    }
    stale = {
        cgid: (statuses[cgid], truth.non_responses[cgid])
        for cgid in recent
        if statuses[cgid] != truth.non_responses[cgid]
    }
    assert stale == {}, "statuses differ inside the refresh window"


class HeldLake:
    """A DuckDB lake with one row, and another transaction deleting it, still open: the next
    merge of that row conflicts, as the retried jobs of a package do after one ran out of memory."""

    def __init__(self, tmp_path: Path) -> None:
        self.connection = duckdb.connect(str(tmp_path / "held.duckdb"))
        self.pipeline = dlt.pipeline(
            "held",
            destination=dlt.destinations.duckdb(self.connection),
            dataset_name="lake",
            pipelines_dir=str(tmp_path / "pipelines"),
        )
        self.pipeline.run(self.rows(v="a"))
        self.other = self.connection.cursor()
        self.other.begin()
        self.other.execute("DELETE FROM lake.t WHERE id = 1")

    @staticmethod
    def rows(v: str) -> Any:
        return dlt.resource(
            [{"id": 1, "v": v}], name="t", write_disposition="merge", primary_key="id"
        )

    def values(self) -> list[tuple[int, str]]:
        return self.connection.execute("SELECT id, v FROM lake.t").fetchall()
