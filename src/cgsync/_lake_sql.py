"""SQL over the lake: the one layer through which the sync, `status` and the report read it.

SQL destinations are queried through dlt's SQL client; tables on the filesystem destination are
read in their own format (Delta with `deltalake`, Iceberg with `pyiceberg`) into an in-memory
DuckDB, since DuckDB's own extensions would have to be downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import dlt
import duckdb
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from cgsync import _views
from cgsync._dlt import destination_kind, open_tables
from cgsync.settings import OWN_TABLE_PREFIX, REJECTED_VALUES_TABLE, SYNCED_AT_COLUMN

__all__ = [
    "LakeSql",
    "MissingRelation",
    "client_sql",
    "count_rejected",
    "lake_counts",
    "lake_sql",
    "loaded_tables",
    "open_table_sql",
    "table_columns",
    "write_views",
]

Fetch = Callable[[str, Sequence[Any]], tuple[tuple[str, ...], list[tuple[Any, ...]]]]
"""Runs a query with `%s` parameters; returns its column names and rows."""


class MissingRelation(Exception):
    """A query named a table or view the lake does not have."""


class LakeSql:
    """SQL on a lake, in the dialect of the engine that reads it.

    Table names in queries come from `table(name)` (quoted, dataset-qualified) and column names
    from `column(name)`; parameters are written `%s`.
    """

    def __init__(
        self,
        fetch: Fetch,
        table: Callable[[str], str],
        column: Callable[[str], str],
        description: str = "",
    ) -> None:
        self._fetch = fetch
        self.table = table
        self.column = column
        self.description = description
        """Where the lake is, for people: `duckdb cgsync.duckdb, dataset customergauge`."""

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """All rows of a query."""
        return [tuple(row) for row in self._fetch(query, params)[1]]

    def count(self, query: str) -> int:
        """The number of rows a query returns."""
        return int(self.rows(f"SELECT COUNT(*) FROM ({query}) AS counted")[0][0])

    def columns(self, table: str) -> tuple[str, ...] | None:
        """The column names of a table or view, or None when the lake has no such relation."""
        try:
            return self.query_columns(f"SELECT * FROM {self.table(table)}")
        except MissingRelation:
            return None

    def query_columns(self, query: str) -> tuple[str, ...]:
        """The column names a query returns, without running it over any rows."""
        return self._fetch(f"SELECT * FROM ({query}) AS q WHERE 1 = 0", ())[0]

    def raising(self, error: Callable[[Exception], Exception]) -> LakeSql:
        """This lake, with a failure to read (other than a missing relation) raised as
        `error(failure)`."""
        fetch = self._fetch

        def guarded(query: str, params: Sequence[Any]) -> tuple[tuple[str, ...], list[Any]]:
            try:
                return fetch(query, params)
            except MissingRelation:
                raise
            except Exception as exc:  # noqa: BLE001 - the caller names every failure
                raise error(exc) from None

        return LakeSql(guarded, self.table, self.column, self.description)

    def instant(self, moment: datetime) -> str:
        """`moment` as a SQL timestamp with time zone (DuckDB, PostgreSQL, DuckDB over Delta)."""
        return f"CAST('{moment.astimezone(UTC).isoformat()}' AS TIMESTAMP WITH TIME ZONE)"


def client_sql(sql: Any, description: str = "") -> LakeSql:
    """SQL through an open dlt SQL client (a SQL destination)."""

    def fetch(query: str, params: Sequence[Any]) -> tuple[tuple[str, ...], list[Any]]:
        try:
            with sql.execute_query(query, *params) as cursor:
                names = tuple(c[0] for c in cursor.description or ())
                return names, list(cursor.fetchall()) if names else []
        except DatabaseUndefinedRelation:
            raise MissingRelation(query) from None

    return LakeSql(fetch, sql.make_qualified_table_name, sql.escape_column_name, description)


@contextmanager
def open_table_sql(tables: Mapping[str, Any], description: str = "") -> Iterator[LakeSql]:
    """SQL in an in-memory DuckDB over Arrow tables or datasets (a filesystem lake's tables)."""
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        for name, data in tables.items():
            connection.register(name, data)

        def fetch(query: str, params: Sequence[Any]) -> tuple[tuple[str, ...], list[Any]]:
            try:
                cursor = connection.execute(query.replace("%s", "?"), list(params))
            except duckdb.CatalogException:
                raise MissingRelation(query) from None
            return tuple(c[0] for c in cursor.description or ()), cursor.fetchall()

        yield LakeSql(fetch, _quote, _quote, description)
    finally:
        connection.close()


@contextmanager
def lake_sql(pipeline: dlt.Pipeline) -> Iterator[LakeSql]:
    """SQL over the pipeline's tables, on any destination and in any table format."""
    if destination_kind(pipeline.destination) != "filesystem":
        with pipeline.sql_client() as sql:
            yield client_sql(sql)
        return
    tables = open_tables(pipeline.dataset()) if pipeline.default_schema_name else {}
    with open_table_sql(tables) as sql:
        yield sql


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def loaded_tables(pipeline: dlt.Pipeline) -> list[str]:
    """The tables of the pipeline's schema that hold data, cgsync's own included."""
    if not pipeline.default_schema_name:
        return []
    return list(pipeline.default_schema.data_table_names(seen_data_only=True))


def table_columns(pipeline: dlt.Pipeline) -> dict[str, list[str]]:
    """The data tables this source has loaded, with their column names."""
    return {
        name: list(pipeline.default_schema.get_table_columns(name))
        for name in loaded_tables(pipeline)
        if not name.startswith(OWN_TABLE_PREFIX)
    }


def lake_counts(sql: LakeSql, columns: Mapping[str, Any]) -> tuple[dict[str, int], int | None]:
    """Rows per data table of `columns`, and the number of open non-responses (None: no such
    tables)."""
    counts = {name: sql.count(f"SELECT 1 FROM {sql.table(name)}") for name in sorted(columns)}
    responses = _views.responses_table(columns)
    if responses is None or _views.NON_RESPONSES not in columns:
        return counts, None
    return counts, sql.count(_views.open_non_responses_sql(sql.table, sql.column, responses))


def count_rejected(sql: LakeSql, tables: Collection[str], since: datetime | None = None) -> int:
    """Rejected values in the lake, whose loaded tables are `tables` (read since `since`, if
    given)."""
    if REJECTED_VALUES_TABLE not in tables:
        return 0
    where = ""
    if since is not None:
        where = f" WHERE {sql.column(SYNCED_AT_COLUMN)} >= {sql.instant(since)}"
    return sql.count(f"SELECT 1 FROM {sql.table(REJECTED_VALUES_TABLE)}{where}")


def write_views(pipeline: dlt.Pipeline, columns: Mapping[str, list[str]]) -> None:
    """Create or replace the lake's views over `columns`' tables (SQL destinations only)."""
    if destination_kind(pipeline.destination) == "filesystem":
        return
    with pipeline.sql_client() as sql:
        for statement in _views.view_statements(
            sql.make_qualified_table_name, sql.escape_column_name, columns
        ):
            sql.execute_sql(statement)
