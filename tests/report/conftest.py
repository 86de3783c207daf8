"""Small lakes built by hand, with the tables of docs/contracts.md §3 and the sync's own views."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pytest
from sync_lake import iceberg_catalog

from cgsync._views import view_statements

DATASET = "customergauge"

Row = Mapping[str, Any]


def at(text: str) -> datetime:
    """A UTC timestamp from `"2026-01-07 10:00"`."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def build_lake(
    cursor: Any,
    dataset: str,
    responses: Sequence[Row],
    non_responses: Sequence[Row],
    responses_table: str = "responses",
) -> None:
    """Write `responses` and `non_responses` through a DB-API cursor, with the sync's views.

    Besides the columns every record has, a table only has the columns some row gives a value,
    as with dlt.
    """
    cursor.execute(f"CREATE SCHEMA {dataset}")
    columns = {
        responses_table: _create_table(
            cursor,
            f"{dataset}.{responses_table}",
            responses,
            ["nps", "date_survey_response", "date_email_sent"],
        ),
        "non_responses": _create_table(
            cursor,
            f"{dataset}.non_responses",
            non_responses,
            ["status", "date_sent", "date_opened", "date_clicked"],
        ),
    }
    for statement in view_statements(lambda name: f"{dataset}.{name}", _quote, columns):
        cursor.execute(statement)


def _create_table(cursor: Any, table: str, rows: Sequence[Row], required: list[str]) -> list[str]:
    columns = ["number_customergauge", *required]
    for row in rows:
        columns += [key for key, value in row.items() if value is not None and key not in columns]
    columns.append("_cgsync_synced_at")
    definitions = ", ".join(f"{_quote(column)} {_sql_type(column)}" for column in columns)
    cursor.execute(f"CREATE TABLE {table} ({definitions})")
    synced_at = at("2026-03-01 00:00")
    values = [[row.get(column) for column in columns[:-1]] + [synced_at] for row in rows]
    if values:
        marks = ", ".join("%s" for _ in columns)
        cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
    return columns


def _sql_type(column: str) -> str:
    if column.startswith("date_") or column == "_cgsync_synced_at":
        return "TIMESTAMPTZ"
    if column in ("number_customergauge", "nps"):
        return "BIGINT"
    return "VARCHAR"


def _quote(name: str) -> str:
    return f'"{name}"'


def _response(cgid: int, nps: int, answered: str, country: str | None, **extra: object) -> dict:
    answered_at = at(answered)
    return {
        "number_customergauge": cgid,
        "nps": nps,
        "date_survey_response": answered_at,
        "date_email_sent": answered_at - timedelta(days=1),
        "properties__country": country,
        **extra,
    }


def _invitation(cgid: int, status: str, sent: str, country: str, **dates: str) -> dict:
    return {
        "number_customergauge": cgid,
        "status": status,
        "date_sent": at(sent),
        "properties__country": country,
        **{column: at(value) for column, value in dates.items()},
    }


# fmt: off
# Weeks start on Mondays: 2026-01-05, 2026-01-12 (only detractors), 2026-01-19.
RESPONSES = [
    _response(1, 10, "2026-01-05 09:00", "NL", properties__division="Retail",
              account__name="ACME", comment="Great service"),
    _response(2, 9, "2026-01-06 09:00", "NL", properties__division="Retail",
              account__name="Globex"),
    _response(3, 8, "2026-01-07 09:00", "DE", properties__division="Retail"),
    _response(4, 3, "2026-01-07 10:00", "NL", properties__division="Retail",
              account__name="ACME", comment="Too slow"),
    _response(5, 6, "2026-01-09 12:00", "DE", properties__division="Retail", comment="   "),
    _response(6, 0, "2026-01-13 08:00", "DE", account__name="Initech",
              comment="Broken invoice link"),
    _response(7, 5, "2026-01-14 08:00", "NL"),
    _response(8, 10, "2026-01-19 08:00", "GB"),
    _response(9, 9, "2026-01-20 08:00", "NL"),
    _response(10, 2, "2026-01-21 08:00", "GB", account__name="Umbrella & Co",
              comment="<script>alert(1)</script>"),
]

# 1-3 are answered invitations the lake still lists; US (12, 13) is invited but never answers;
# 14 and 15 failed, so their nps is NULL in survey_funnel.
NON_RESPONSES = [
    _invitation(1, "survey-clicked", "2026-01-04 09:00", "NL",
                date_opened="2026-01-04 10:00", date_clicked="2026-01-05 08:59"),
    _invitation(2, "survey-clicked", "2026-01-05 09:00", "NL",
                date_opened="2026-01-05 10:00", date_clicked="2026-01-06 08:59"),
    _invitation(3, "survey-opened", "2026-01-06 09:00", "DE", date_opened="2026-01-06 10:00"),
    _invitation(11, "survey-sent", "2026-01-06 10:00", "NL"),
    _invitation(12, "survey-opened", "2026-01-06 11:00", "US", date_opened="2026-01-07 11:00"),
    _invitation(13, "survey-clicked", "2026-01-14 09:00", "US",
                date_opened="2026-01-14 10:00", date_clicked="2026-01-14 10:05"),
    _invitation(14, "bounced", "2026-01-13 09:00", "DE"),
    _invitation(15, "blocked", "2026-01-20 09:00", "NL"),
]
# fmt: on


MakeLake = Callable[..., Path]


@pytest.fixture
def make_lake(tmp_path: Path) -> MakeLake:
    """Build a lake from rows: `make_lake(responses, non_responses)` -> its DuckDB file."""

    def make(
        responses: Sequence[Row], non_responses: Sequence[Row], responses_table: str = "responses"
    ) -> Path:
        path = tmp_path / "cgsync.duckdb"
        path.unlink(missing_ok=True)  # each call builds the lake anew
        with duckdb.connect(str(path)) as con:
            build_lake(_DuckDbCursor(con), DATASET, responses, non_responses, responses_table)
        return path

    return make


@pytest.fixture
def lake_path(make_lake: MakeLake) -> Path:
    """The small fixed lake whose figures the tests work out by hand."""
    return make_lake(RESPONSES, NON_RESPONSES)


@pytest.fixture
def postgres_dsn() -> str:
    """CGSYNC_TEST_POSTGRES_DSN (`.ci/run` sets it; locally: `bash .ci/postgres.sh`)."""
    dsn = os.environ.get("CGSYNC_TEST_POSTGRES_DSN")
    if not dsn:
        if os.environ.get("CI") == "true":
            pytest.fail("CGSYNC_TEST_POSTGRES_DSN is not set: .ci/run starts PostgreSQL")
        pytest.skip("set CGSYNC_TEST_POSTGRES_DSN to a PostgreSQL database (bash .ci/postgres.sh)")
    return dsn


@pytest.fixture
def postgres_lake(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The fixed lake in PostgreSQL, in a dataset of its own; returns the dataset."""
    import psycopg2

    dataset = f"report_test_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_dsn)
    with psycopg2.connect(postgres_dsn) as con, con.cursor() as cursor:
        build_lake(cursor, dataset, RESPONSES, NON_RESPONSES)
    try:
        yield dataset
    finally:
        with psycopg2.connect(postgres_dsn) as con, con.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA {dataset} CASCADE")


@pytest.fixture(params=["parquet", "delta", "iceberg"])
def files_lake(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The fixed lake's tables on dlt's filesystem destination (no views); returns the dataset.

    As parquet files, and as the Delta or Iceberg tables the sync writes there.
    """
    table_format = None if request.param == "parquet" else request.param
    with iceberg_catalog(tmp_path / "catalog"):
        yield _files_lake(tmp_path, monkeypatch, table_format)


def _files_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table_format: Any) -> str:
    bucket = (tmp_path / "files").as_uri()
    pipeline = dlt.pipeline(
        "report_files",
        destination=dlt.destinations.filesystem(bucket),
        dataset_name=DATASET,
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    pipeline.run(
        [
            dlt.resource(rows, name=name, table_format=table_format)
            for name, rows in [
                ("responses", pa.Table.from_pylist(RESPONSES)),
                ("non_responses", pa.Table.from_pylist(NON_RESPONSES)),
            ]
        ],
        loader_file_format="parquet",
    )
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", bucket)
    return DATASET


class _DuckDbCursor:
    """DuckDB's connection with the `%s` parameters psycopg2 uses."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def execute(self, query: str) -> None:
        self._con.execute(query)

    def executemany(self, query: str, rows: list[list[Any]]) -> None:
        self._con.executemany(query.replace("%s", "?"), rows)
