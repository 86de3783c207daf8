"""The report's lake: opened read-only, whichever destination dlt wrote it to, and read through
the sync's own SQL layer (`cgsync._lake_sql`). A lake that cannot be opened or read is a
ConfigError naming what to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination import Destination

from cgsync._dlt import open_tables, read_only_duckdb
from cgsync._exceptions import ConfigError
from cgsync._lake_sql import LakeSql, client_sql, open_table_sql

# dlt's DuckDB client opens its sessions in UTC already; these need telling.
_SESSION_IN_UTC = {
    "postgres": "SET TIME ZONE 'UTC'",
    "redshift": "SET TIME ZONE 'UTC'",
}


@contextmanager
def open_lake(destination: str, dataset_name: str, duckdb_path: Path) -> Iterator[LakeSql]:
    """Open the dataset read-only; a lake that cannot be opened or read is a `ConfigError`."""
    dataset = dlt.dataset(_destination(destination, duckdb_path), dataset_name)
    opener = (
        _open_tables if destination == "filesystem" and _has_open_tables(dataset) else _open_sql
    )
    where = f"{destination} {duckdb_path}" if destination == "duckdb" else destination
    with opener(dataset, destination, f"{where}, dataset {dataset_name}") as lake:
        yield lake


@contextmanager
def _open_sql(dataset: dlt.Dataset, destination: str, description: str) -> Iterator[LakeSql]:
    try:
        sql = dataset.sql_client
        sql.open_connection()
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises is one line
        raise ConfigError(f"cannot open the lake on {destination}: {_first_line(exc)}") from None
    try:
        try:
            has_dataset = sql.has_dataset()
            if statement := _SESSION_IN_UTC.get(destination):
                sql.execute_sql(statement)
        except Exception as exc:  # noqa: BLE001 - whatever the driver raises is one line
            raise _read_error(exc) from None
        if not has_dataset:
            raise ConfigError(
                f"the lake has no dataset {dataset.dataset_name!r}: run `cgsync sync` first "
                "or pass the right --dataset"
            )
        yield client_sql(sql, description).raising(_read_error)
    finally:
        sql.close_connection()


@contextmanager
def _open_tables(dataset: dlt.Dataset, destination: str, description: str) -> Iterator[LakeSql]:
    try:
        tables = open_tables(dataset)
    except Exception as exc:  # noqa: BLE001 - whatever the table format raises is one line
        raise ConfigError(f"cannot open the lake on {destination}: {_first_line(exc)}") from None
    with open_table_sql(tables, description) as sql:
        yield sql.raising(_read_error)


def _read_error(exc: Exception) -> ConfigError:
    return ConfigError(f"cannot read the lake: {_first_line(exc)}")


def _has_open_tables(dataset: dlt.Dataset) -> bool:
    try:
        tables = dataset.schema.data_tables()
    except Exception:  # noqa: BLE001 - _open_sql reports why the lake cannot be read
        return False
    return any(table.get("table_format") in ("delta", "iceberg") for table in tables)


def _destination(name: str, duckdb_path: Path) -> Destination[Any, Any]:
    if name != "duckdb":
        try:
            destination = Destination.from_reference(name)
        except Exception:  # noqa: BLE001 - an unknown name, a missing extra: said below
            destination = None
        if destination is None:
            raise ConfigError(
                f"unknown --destination {name!r}: use a dlt destination such as duckdb, postgres"
                " or filesystem"
            )
        return destination
    if not duckdb_path.is_file():
        raise ConfigError(
            f"no lake at {duckdb_path}: run `cgsync sync` first or pass --duckdb-path"
        )
    # read_only lets the report run beside a reader and never creates or changes the file.
    return read_only_duckdb(duckdb_path)


def _first_line(exc: BaseException) -> str:
    """The first line of the root cause: dlt wraps driver errors in long generic advice."""
    inner = getattr(exc, "inner_exc", None) or exc.__cause__
    if isinstance(inner, BaseException):
        return _first_line(inner)
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
