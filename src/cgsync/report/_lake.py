"""Read-only SQL over the lake the sync leaves, whichever destination dlt wrote it to.

SQL destinations are queried through dlt's SQL client. Delta tables on the filesystem
destination are read with `deltalake` into an in-memory DuckDB, as the sync reads them: DuckDB's
own delta extension would have to be downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
import duckdb
from dlt.common.destination import Destination
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from cgsync._exceptions import ConfigError

Fetch = Callable[[str, Sequence[Any]], tuple[tuple[str, ...], list[tuple[Any, ...]]]]
"""Runs a query with `%s` parameters; returns its column names and rows."""

# dlt's DuckDB client opens its sessions in UTC already; these need telling.
_SESSION_IN_UTC = {
    "postgres": "SET TIME ZONE 'UTC'",
    "redshift": "SET TIME ZONE 'UTC'",
}


class _MissingRelation(Exception):
    pass


class Lake:
    """The dataset's tables, queried with the SQL of the engine that reads them."""

    def __init__(
        self,
        fetch: Fetch,
        table: Callable[[str], str],
        column: Callable[[str], str],
        description: str,
    ) -> None:
        self._fetch = fetch
        self.description = description
        """Where the lake is, for people: `duckdb cgsync.duckdb, dataset customergauge`."""
        self.table = table
        """The quoted, dataset-qualified name of a table or view."""
        self.column = column
        """The quoted name of a column."""

    def columns(self, table: str) -> tuple[str, ...] | None:
        """The column names of a table or view, or None when the lake has no such relation."""
        try:
            return self.query_columns(f"SELECT * FROM {self.table(table)}")
        except _MissingRelation:
            return None

    def query_columns(self, query: str) -> tuple[str, ...]:
        """The column names a query returns, without running it over any rows."""
        return self._fetch(f"SELECT * FROM ({query}) AS q WHERE 1 = 0", ())[0]

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """All rows of a query; parameters are written `%s`."""
        return self._fetch(query, params)[1]


@contextmanager
def open_lake(destination: str, dataset_name: str, duckdb_path: Path) -> Iterator[Lake]:
    """Open the dataset read-only; a lake that cannot be opened or read is a `ConfigError`."""
    dataset = dlt.dataset(_destination(destination, duckdb_path), dataset_name)
    opener = _open_delta if destination == "filesystem" and _has_delta(dataset) else _open_sql
    where = f"{destination} {duckdb_path}" if destination == "duckdb" else destination
    with opener(dataset, destination, f"{where}, dataset {dataset_name}") as lake:
        yield lake


@contextmanager
def _open_sql(dataset: dlt.Dataset, destination: str, description: str) -> Iterator[Lake]:
    try:
        sql = dataset.sql_client
        sql.open_connection()
    except Exception as exc:  # noqa: BLE001 - whatever the destination's driver raises
        raise ConfigError(f"cannot open the lake on {destination}: {_first_line(exc)}") from None

    def fetch(query: str, params: Sequence[Any]) -> tuple[tuple[str, ...], list[Any]]:
        try:
            with sql.execute_query(query, *params) as cursor:
                return tuple(c[0] for c in cursor.description), list(cursor.fetchall())
        except DatabaseUndefinedRelation:
            raise _MissingRelation from None
        except Exception as exc:  # noqa: BLE001 - whatever the destination's driver raises
            raise ConfigError(f"cannot read the lake: {_first_line(exc)}") from None

    try:
        try:
            has_dataset = sql.has_dataset()
            if statement := _SESSION_IN_UTC.get(destination):
                sql.execute_sql(statement)
        except Exception as exc:  # noqa: BLE001 - whatever the destination's driver raises
            raise ConfigError(f"cannot read the lake: {_first_line(exc)}") from None
        if not has_dataset:
            raise ConfigError(
                f"the lake has no dataset {dataset.dataset_name!r}: run `cgsync sync` first "
                "or pass the right --dataset"
            )
        yield Lake(fetch, sql.make_qualified_table_name, sql.escape_column_name, description)
    finally:
        sql.close_connection()


@contextmanager
def _open_delta(dataset: dlt.Dataset, destination: str, description: str) -> Iterator[Lake]:
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        try:
            tables, schema = dataset.open_table_client, dataset.schema
            for name in schema.data_table_names():
                if schema.tables[name].get("table_format") == "delta":
                    delta = tables.load_open_table("delta", name)
                    connection.register(name, delta.to_pyarrow_dataset())
        except Exception as exc:  # noqa: BLE001 - whatever dlt, deltalake or the storage raise
            raise ConfigError(
                f"cannot open the lake on {destination}: {_first_line(exc)}"
            ) from None

        def fetch(query: str, params: Sequence[Any]) -> tuple[tuple[str, ...], list[Any]]:
            try:
                cursor = connection.execute(query.replace("%s", "?"), list(params))
            except duckdb.CatalogException:
                raise _MissingRelation from None
            except duckdb.Error as exc:
                raise ConfigError(f"cannot read the lake: {_first_line(exc)}") from None
            return tuple(c[0] for c in cursor.description), cursor.fetchall()

        yield Lake(fetch, _quote, _quote, description)
    finally:
        connection.close()


def _has_delta(dataset: dlt.Dataset) -> bool:
    try:
        tables = dataset.schema.data_tables()
    except Exception:  # noqa: BLE001 - any failure; _open_sql reports it
        return False
    return any(table.get("table_format") == "delta" for table in tables)


def _destination(name: str, duckdb_path: Path) -> Destination[Any, Any]:
    if name != "duckdb":
        try:
            destination = Destination.from_reference(name)
        except Exception:  # noqa: BLE001 - dlt raises several kinds for a bad reference
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
    return dlt.destinations.duckdb(DuckDbCredentials(str(duckdb_path), read_only=True))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(exc: BaseException) -> str:
    """The first line of the root cause: dlt wraps driver errors in long generic advice."""
    inner = getattr(exc, "inner_exc", None) or exc.__cause__
    if isinstance(inner, BaseException):
        return _first_line(inner)
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
