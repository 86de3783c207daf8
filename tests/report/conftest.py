"""Small lakes built by hand, with the tables of docs/contracts.md §3 and the sync's own views."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pytest
from machines import Machine, connect
from sync_lake import iceberg_catalog

from cgsync._views import view_statements
from cgsync.emulator import EmulatorConfig, start_emulator

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
    children: Mapping[str, Sequence[Row]] | None = None,
) -> None:
    """Write `responses` and `non_responses` through a DB-API cursor, with the sync's views.

    Besides the columns every record has, a table only has the columns some row gives a value,
    as with dlt. `children` are rows of the responses' child tables by suffix (`drivers`).
    """
    cursor.execute(f"CREATE SCHEMA {dataset}")
    for suffix, rows in (children or {}).items():
        _create_table(
            cursor, f"{dataset}.{responses_table}__{suffix}", rows, ["position"], synced=False
        )
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


def _create_table(
    cursor: Any, table: str, rows: Sequence[Row], required: list[str], *, synced: bool = True
) -> list[str]:
    columns = ["number_customergauge", *required]
    for row in rows:
        columns += [key for key, value in row.items() if value is not None and key not in columns]
    if synced:
        columns.append("_cgsync_synced_at")
    definitions = ", ".join(f"{_quote(column)} {_sql_type(column)}" for column in columns)
    cursor.execute(f"CREATE TABLE {table} ({definitions})")
    synced_at = [at("2026-03-01 00:00")] if synced else []
    given = columns[:-1] if synced else columns
    values = [[row.get(column) for column in given] + synced_at for row in rows]
    if values:
        marks = ", ".join("%s" for _ in columns)
        cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
    return columns


def _sql_type(column: str) -> str:
    if column.startswith("date_") or column == "_cgsync_synced_at":
        return "TIMESTAMPTZ"
    if column in ("number_customergauge", "nps", "position", "id"):
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

def _driver(cgid: int, position: int, name: str | None, sentiment: str | None) -> dict:
    return {
        "number_customergauge": cgid,
        "position": position,
        "id": None if name is None else len(name),
        "name": name,
        "sentiment": sentiment,
    }


def _tag(cgid: int, position: int, value: str) -> dict:
    return {"number_customergauge": cgid, "position": position, "value": value}


DRIVERS = [
    # Delivery: 1 (promoter) positive; 4, 6, 10 (detractors) negative, 4 twice
    _driver(1, 0, "Delivery", "positive"),
    _driver(4, 0, "Delivery", "negative"),
    _driver(4, 1, "Delivery", "neutral"),
    _driver(6, 0, "Delivery", "negative"),
    _driver(10, 0, "Delivery", "negative"),
    # Ease of use: promoters 1, 2, 8 positive; detractor 7 neutral
    _driver(1, 1, "Ease of use", "positive"),
    _driver(2, 0, "Ease of use", "positive"),
    _driver(8, 0, "Ease of use", "positive"),
    _driver(7, 0, "Ease of use", "neutral"),
    # Price: detractor 5, its sentiment capitalised
    _driver(5, 0, "Price", "Negative"),
    _driver(9, 0, None, "positive"),  # no name: left out
    _driver(11, 0, "Price", "negative"),  # 11 never answered: left out
]
TAGS = [
    _tag(4, 0, "Billing"), _tag(6, 0, "Billing"), _tag(10, 0, "Billing"),
    _tag(4, 1, "Delivery"), _tag(7, 0, "Delivery"),
    _tag(5, 0, ""),  # blank: left out
    _tag(1, 0, "Ease"), _tag(2, 0, "Ease"), _tag(8, 0, "Billing"),
    _tag(9, 0, "Quality"), _tag(9, 1, "Quality"),  # twice on one response: counted once
    _tag(3, 0, "Billing"),  # a passive: in neither band
]
CHILDREN = {"drivers": DRIVERS, "tags": TAGS}
# fmt: on


EMULATOR_LAKE = EmulatorConfig(records=20_000, seed=5)
"""The emulator whose lake `synced` holds: enough records for every month to count."""


@dataclass(frozen=True)
class SyncedLake:
    path: Path
    config: EmulatorConfig
    """The emulator it was synced from."""

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.path), read_only=True) as lake:
            lake.execute("SET schema = 'customergauge'")
            return lake.execute(sql).fetchall()


@pytest.fixture(scope="session")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncedLake]:
    """`cgsync sync` of the emulator into ./cgsync.duckdb, with the defaults."""
    here = tmp_path_factory.mktemp("lake")
    machine = Machine(here / "machine")
    with start_emulator(EMULATOR_LAKE) as emu:
        env = connect(emu)
        result = machine.cgsync(
            "sync", "--source-timezone", EMULATOR_LAKE.timezone, cwd=here, env=env
        )
    assert result.returncode == 0, result.stderr
    yield SyncedLake(here / "cgsync.duckdb", EMULATOR_LAKE)


MakeLake = Callable[..., Path]


@pytest.fixture
def make_lake(tmp_path: Path) -> MakeLake:
    """Build a lake from rows: `make_lake(responses, non_responses)` -> its DuckDB file."""

    def make(
        responses: Sequence[Row],
        non_responses: Sequence[Row],
        responses_table: str = "responses",
        children: Mapping[str, Sequence[Row]] | None = None,
    ) -> Path:
        path = tmp_path / "cgsync.duckdb"
        path.unlink(missing_ok=True)  # each call builds the lake anew
        with duckdb.connect(str(path)) as con:
            build_lake(
                _DuckDbCursor(con), DATASET, responses, non_responses, responses_table, children
            )
        return path

    return make


@pytest.fixture
def lake_path(make_lake: MakeLake) -> Path:
    """The small fixed lake whose figures the tests work out by hand."""
    return make_lake(RESPONSES, NON_RESPONSES, children=CHILDREN)


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
        build_lake(cursor, dataset, RESPONSES, NON_RESPONSES, children=CHILDREN)
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
                *[
                    (f"responses__{suffix}", pa.Table.from_pylist(r))
                    for suffix, r in CHILDREN.items()
                ],
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
