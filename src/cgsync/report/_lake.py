"""Read-only access to the lake the sync leaves, through dlt's SQL client."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination import Destination
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.destinations.sql_client import SqlClientBase

from cgsync._exceptions import ConfigError

# dlt's DuckDB client opens its sessions in UTC already; these need telling.
_SESSION_IN_UTC = {
    "postgres": "SET TIME ZONE 'UTC'",
    "redshift": "SET TIME ZONE 'UTC'",
}


class Lake:
    """The dataset's tables, queried with the destination's own SQL."""

    def __init__(self, sql_client: SqlClientBase[Any]) -> None:
        self._sql = sql_client

    def table(self, name: str) -> str:
        """The quoted, dataset-qualified name of a table or view."""
        return self._sql.make_qualified_table_name(name)

    def column(self, name: str) -> str:
        return self._sql.escape_column_name(name)

    def columns(self, table: str) -> tuple[str, ...] | None:
        """The column names of a table or view, or None when the lake has no such relation."""
        try:
            return self.query_columns(f"SELECT * FROM {self.table(table)}")
        except DatabaseUndefinedRelation:
            return None

    def query_columns(self, query: str) -> tuple[str, ...]:
        """The column names a query returns, without running it over any rows."""
        with self._sql.execute_query(f"SELECT * FROM ({query}) AS q WHERE 1 = 0") as cur:
            return tuple(column[0] for column in cur.description)

    def rows(self, query: str, *params: Any) -> Sequence[Sequence[Any]]:
        """All rows of a query; parameters are written `%s`."""
        with self._sql.execute_query(query, *params) as cur:
            return cur.fetchall()


@contextmanager
def open_lake(destination: str, dataset_name: str, duckdb_path: Path) -> Iterator[Lake]:
    """Open the dataset read-only; a lake that cannot be opened is a one-line `ConfigError`."""
    dataset = dlt.dataset(_destination(destination, duckdb_path), dataset_name)
    try:
        sql_client = dataset.sql_client
        sql_client.open_connection()
    except Exception as exc:
        raise ConfigError(f"cannot open the lake on {destination}: {_first_line(exc)}") from None
    try:
        if not sql_client.has_dataset():
            raise ConfigError(
                f"the lake has no dataset {dataset_name!r}: run `cgsync sync` first "
                "or pass the right --dataset"
            )
        if statement := _SESSION_IN_UTC.get(destination):
            sql_client.execute_sql(statement)
        yield Lake(sql_client)
    finally:
        sql_client.close_connection()


def _destination(name: str, duckdb_path: Path) -> Destination[Any, Any]:
    if name != "duckdb":
        try:
            destination = Destination.from_reference(name)
        except Exception:
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
