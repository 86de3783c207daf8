"""`cgsync sync --reconcile`: everything walked again, then what the API no longer lists deleted.

A reconcile is a full walk of every resource (as `--full-refresh`, `--parallel` included) that
merges each record as the API shows it now, so every record still listed leaves its row with a
`_cgsync_synced_at` from this sync. Once every walk is complete, a record that is in neither
the responses nor the non-responses so synced is gone at the source (erased): its rows are
deleted from every table, main and child, through dlt's `hard_delete` column hint (tombstone
rows in a load of their own), or on Iceberg, where dlt's merge ignores that hint, by pyiceberg's
own deletes. So no CGID set has to survive a checkpoint, and a reconcile
killed at any moment has deleted nothing still listed: the next one walks again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import dlt
import pyarrow as pa
from dlt.common.schema.typing import TColumnSchema, TWriteDispositionConfig

from cgsync._dlt import iceberg_tables
from cgsync._errors import dlt_errors
from cgsync._exceptions import ConfigError
from cgsync._lake import TableFormat
from cgsync._lake_sql import LakeSql, lake_sql, table_columns
from cgsync._tables import CHILD_KEY, CHILD_ROW_KEY, POSITION, TIMESTAMP, is_child_table, row_key
from cgsync.settings import PRIMARY_KEY, SOURCE_NAME, SYNCED_AT_COLUMN

if TYPE_CHECKING:
    from cgsync._config import SyncOptions
    from cgsync._summary import SyncSummary

DELETED_COLUMN = "_cgsync_deleted"
"""dlt's `hard_delete` column: a row that carries True deletes the rows of its key."""
_DELETED: TColumnSchema = {"data_type": "bool", "nullable": True, "hard_delete": True}
_KEYS_PER_DELETE = 1_000


RECONCILED = ("responses", "non_responses")
"""The listings a reconcile walks: a record in neither is gone."""


def check_reconcile(options: SyncOptions) -> None:
    """A reconcile judges a record gone only when neither v7 listing holds it: both are walked
    in full, without filters."""
    missing = [name for name in RECONCILED if name not in options.endpoints]
    if missing:
        raise ConfigError(
            f"--reconcile walks both listings: add {', '.join(missing)} to --endpoints"
        )
    if options.filters.key != "all":
        raise ConfigError("--reconcile walks everything: drop the filters (--cgid, --since...)")


def unlisted_keys(pipeline: dlt.Pipeline, summary: SyncSummary) -> dict[str, list[dict[str, Any]]]:
    """After a reconcile's complete walks: per table, the keys of the records the API no longer
    lists (their rows were not synced by this run). Only reads the lake; the runner calls it
    within `dlt_errors` and DuckDB's memory steps."""
    columns = table_columns(pipeline)
    mains = [name for name in summary.resources if name in columns]
    tables = [name for name in columns if name.split("__")[0] in mains]
    with lake_sql(pipeline) as sql:
        return stale_keys(sql, tables, mains, summary.started_at)


def delete_unlisted(
    pipeline: dlt.Pipeline,
    summary: SyncSummary,
    stale: Mapping[str, list[dict[str, Any]]],
    fmt: TableFormat | None,
    *,
    run: Callable[[Any], None],
) -> None:
    """Delete the `stale` rows (`unlisted_keys`) from every table; `run` loads the tombstones
    (the runner's `pipeline.run`)."""
    with dlt_errors(pipeline):
        if any(stale.values()) and fmt == "iceberg":
            delete_from_iceberg(pipeline, stale)
        elif any(stale.values()):
            run(tombstone_source(stale, fmt))
    for name in summary.resources:
        summary.resources[name].removed = len(stale.get(name, []))


def stale_keys(
    sql: LakeSql, tables: Sequence[str], main_tables: Sequence[str], since: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Per table, the keys of the rows whose record no main table holds as synced `since`."""
    instant = sql.instant(since)
    key, synced = sql.column(PRIMARY_KEY), sql.column(SYNCED_AT_COLUMN)
    # NOT EXISTS, not NOT IN: PostgreSQL turns it into a hash anti-join at any size.
    unlisted = " AND ".join(
        f"NOT EXISTS (SELECT 1 FROM {sql.table(table)} AS f "
        f"WHERE f.{key} = t.{key} AND f.{synced} >= {instant})"
        for table in main_tables
    )
    stale: dict[str, list[dict[str, Any]]] = {}
    for table in tables:
        names = (PRIMARY_KEY,) if table in main_tables else CHILD_KEY
        columns = ", ".join(f"t.{sql.column(name)}" for name in names)
        rows = sql.rows(f"SELECT {columns} FROM {sql.table(table)} AS t WHERE {unlisted}")
        stale[table] = [dict(zip(names, row, strict=True)) for row in rows]
    return stale


@dlt.source(name=SOURCE_NAME, max_table_nesting=0)
def tombstone_source(
    stale: Mapping[str, list[dict[str, Any]]], table_format: TableFormat | None
) -> Iterator[Any]:
    """A tombstone per stale key, merged like the table's own rows, so dlt deletes them."""
    now = datetime.now(UTC)
    disposition: TWriteDispositionConfig = {
        "disposition": "merge",
        "strategy": "upsert" if table_format else "delete-insert",
    }
    for table, keys in stale.items():
        if not keys:
            continue
        child = is_child_table(table)
        # Arrow, as the data: dlt adds no `_dlt_id` / `_dlt_load_id` columns to the tables.
        columns: dict[str, pa.Array] = {
            PRIMARY_KEY: pa.array([key[PRIMARY_KEY] for key in keys], pa.int64())
        }
        if child:
            columns[POSITION] = pa.array([key[POSITION] for key in keys], pa.int64())
        else:
            columns[SYNCED_AT_COLUMN] = pa.array([now] * len(keys), TIMESTAMP)
        columns[DELETED_COLUMN] = pa.array([True] * len(keys), pa.bool_())
        resource = dlt.resource(
            [pa.table(columns)],
            name=f"{table}_tombstones",
            table_name=table,
            write_disposition=disposition,
            primary_key=list(CHILD_KEY) if child else PRIMARY_KEY,
            columns={DELETED_COLUMN: dict(_DELETED)},
        )
        if child and not table_format:
            resource.apply_hints(merge_key=PRIMARY_KEY)
        resource.apply_hints(table_format=table_format)
        yield resource


def delete_from_iceberg(pipeline: dlt.Pipeline, stale: Mapping[str, list[dict[str, Any]]]) -> None:
    """Delete the stale keys' rows from Iceberg tables, a commit per thousand keys.

    dlt merges into Iceberg with pyiceberg's `upsert`, which has no deletes: a tombstone would
    land as a row. A delete stopped half-way leaves rows the next reconcile finds again.
    """
    from pyiceberg.expressions import In

    names = [table for table, keys in stale.items() if keys]
    for name, table in iceberg_tables(pipeline, *names).items():
        # Child rows by their one-column key (`CHILD_ROW_KEY`): an IN list, as in the merge.
        column, values = (
            (CHILD_ROW_KEY, [row_key(key[PRIMARY_KEY], key[POSITION]) for key in stale[name]])
            if is_child_table(name)
            else (PRIMARY_KEY, [key[PRIMARY_KEY] for key in stale[name]])
        )
        for start in range(0, len(values), _KEYS_PER_DELETE):
            table.delete(delete_filter=In(column, values[start : start + _KEYS_PER_DELETE]))
