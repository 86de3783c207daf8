"""SQL over the lake: the one layer through which the sync, `status` and the report read it.

SQL destinations are queried through dlt's SQL client; tables on the filesystem destination are
read in their own format (Delta with `deltalake`, Iceberg with `pyiceberg`) into an in-memory
DuckDB, since DuckDB's own extensions would have to be downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import dlt
import duckdb

from cgsync import _views
from cgsync._dlt import delta_tables, destination_kind, iceberg_tables
from cgsync.settings import OWN_TABLE_PREFIX, REJECTED_VALUES_TABLE, SYNCED_AT_COLUMN

__all__ = ["LakeSql", "count_rejected", "lake_counts", "lake_sql", "table_columns", "write_views"]


class LakeSql:
    """Runs SQL on a lake: the destination's own client, or DuckDB over the Delta tables.

    Table names in queries come from `table(name)` and column names from `column(name)`.
    """

    def __init__(
        self,
        execute: Callable[[str], Any],
        table: Callable[[str], str],
        column: Callable[[str], str],
    ) -> None:
        self._execute = execute
        self.table = table
        self.column = column

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._execute(query) or ()]

    def count(self, query: str) -> int:
        return int(self.rows(f"SELECT COUNT(*) FROM ({query}) AS counted")[0][0])

    def instant(self, moment: datetime) -> str:
        """`moment` as a SQL timestamp with time zone (DuckDB, PostgreSQL, DuckDB over Delta)."""
        return f"CAST('{moment.astimezone(UTC).isoformat()}' AS TIMESTAMP WITH TIME ZONE)"


@contextmanager
def lake_sql(pipeline: dlt.Pipeline) -> Iterator[LakeSql]:
    """SQL over the pipeline's tables. On the filesystem destination, DuckDB reads each table in
    its own format: Delta with `deltalake`, Iceberg with `pyiceberg` (no DuckDB extension, which
    would need the network)."""
    if destination_kind(pipeline.destination) != "filesystem":
        with pipeline.sql_client() as sql:
            yield LakeSql(sql.execute_sql, sql.make_qualified_table_name, sql.escape_column_name)
        return
    connection = duckdb.connect()
    try:
        for name, dataset in _open_tables(pipeline).items():
            connection.register(name, dataset)

        def quote(name: str) -> str:
            return '"' + name.replace('"', '""') + '"'

        yield LakeSql(lambda query: connection.execute(query).fetchall(), quote, quote)
    finally:
        connection.close()


def _open_tables(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """The pipeline's Delta and Iceberg tables, as Arrow data DuckDB can scan."""
    if not pipeline.default_schema_name:
        return {}
    schema = pipeline.default_schema
    formats = {
        schema.tables[name].get("table_format")
        for name in schema.data_table_names(seen_data_only=True)
    }
    tables: dict[str, Any] = {}
    if "delta" in formats:
        for name, delta in delta_tables(pipeline).items():
            tables[name] = delta.to_pyarrow_dataset()
    if "iceberg" in formats:
        for name, iceberg in iceberg_tables(pipeline).items():
            # Read into memory: a scan applies the deletes of the table (pyiceberg).
            tables[name] = iceberg.scan().to_arrow()
    return tables


def table_columns(pipeline: dlt.Pipeline) -> dict[str, list[str]]:
    """The data tables this source has loaded, with their column names."""
    if not pipeline.default_schema_name:
        return {}
    schema = pipeline.default_schema
    return {
        name: list(schema.get_table_columns(name))
        for name in schema.data_table_names(seen_data_only=True)
        if not name.startswith(OWN_TABLE_PREFIX)
    }


def lake_counts(
    pipeline: dlt.Pipeline, columns: Mapping[str, Any] | None = None
) -> tuple[dict[str, int], int | None]:
    """Rows per data table, and the number of open non-responses (None: no such tables)."""
    columns = table_columns(pipeline) if columns is None else columns
    if not columns:
        return {}, None
    with lake_sql(pipeline) as sql:
        counts = {name: sql.count(f"SELECT 1 FROM {sql.table(name)}") for name in sorted(columns)}
        responses = _views.responses_table(columns)
        if responses is None or _views.NON_RESPONSES not in columns:
            return counts, None
        return counts, sql.count(_views.open_non_responses_sql(sql.table, sql.column, responses))


def count_rejected(pipeline: dlt.Pipeline, since: datetime | None = None) -> int:
    """Rejected values in the lake (read since `since`, if given)."""
    if REJECTED_VALUES_TABLE not in pipeline.default_schema.data_table_names(seen_data_only=True):
        return 0
    with lake_sql(pipeline) as sql:
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
