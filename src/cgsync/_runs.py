"""The lake's run history: one row per sync in `_cgsync_runs`, beside the data it loaded.

The history lives in the lake, not on the machine that ran the sync, so `cgsync status` tells
the same story on a fresh machine, in a container or under an orchestrator. A sync appends its
row when it ends, ok or not (a killed process writes none: its last checkpoint is in the lake
all the same). A sync that is refused before it starts (locked, another system) writes none.

A row that cannot reach the lake (the destination is what failed, and its package still waits
to load) is kept in the lake's local working directory and appended by the next sync that
can write.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dlt
import orjson

from cgsync._lake import TableFormat
from cgsync._lake_sql import LakeSql
from cgsync._tables import RUNS
from cgsync.settings import SOURCE_NAME, UNRECORDED_RUNS_FILE

CGSYNC_VERSION = version("cgsync")
_RESOURCE_COUNTS = ("pages", "records", "refresh_pages", "refresh_records", "removed", "cursor")
_JSON_COLUMNS = [column.name for column in RUNS.columns if column.data_type == "json"]


def run_row(summary: Mapping[str, Any], **context: Any) -> dict[str, Any]:
    """The history row of a finished sync's summary (`SyncSummary.to_dict()`), with `context`
    (full_refresh, reconcile, parallel, api_host, client_id)."""
    resources = {
        name: {key: counts.get(key) for key in _RESOURCE_COUNTS}
        for name, counts in summary["resources"].items()
    }
    row = {
        "run_id": uuid.uuid4().hex,
        "pipeline_name": summary["pipeline_name"],
        "started_at": datetime.fromisoformat(summary["started_at"]),
        "finished_at": datetime.fromisoformat(summary["finished_at"] or _now()),
        "seconds": summary["seconds"],
        "outcome": summary["outcome"],
        "error": summary["error"],
        "checkpoints": summary["checkpoints"],
        "resources": resources,
        "api_calls": summary["api_calls"],
        "token_calls": summary["token_calls"],
        "retries": summary["retries"],
        "row_counts": summary["row_counts"],
        "open_non_responses": summary["open_non_responses"],
        "rejected_values": summary["rejected_values"],
        "machine": socket.gethostname(),
        "cgsync_version": CGSYNC_VERSION,
        "dlt_version": dlt.__version__,
        **context,
    }
    return {name: row.get(name) for name in RUNS.names}


@dlt.source(name=SOURCE_NAME, max_table_nesting=0)
def run_history_source(
    rows: list[dict[str, Any]], table_format: TableFormat | None
) -> Iterator[Any]:
    """Rows for `_cgsync_runs`, in the schema of the data tables (so one dataset, one
    schema): dlt merges it into the stored schema of the same name."""
    resource: dlt.sources.DltResource = dlt.resource(
        rows, name=RUNS.name, write_disposition="append", columns=RUNS.dlt_columns()
    )
    resource.apply_hints(table_format=table_format)
    yield resource


class HistoryDeferred(Exception):
    """The run's row waits in the local working directory for the next sync."""


def record_run(
    pipeline: dlt.Pipeline, row: dict[str, Any], table_format: TableFormat | None
) -> None:
    """Append `row` (and any rows earlier syncs could not write) to the lake's history, in a
    load of its own; raise HistoryDeferred, keeping them locally, if the lake can't take it."""
    backlog = Path(pipeline.working_dir) / UNRECORDED_RUNS_FILE
    rows = [*_read_backlog(backlog), row]
    if pipeline.has_pending_data:  # dlt would load that package instead of the row
        _write_backlog(backlog, rows)
        raise HistoryDeferred("a package of this sync is still waiting to load")
    try:
        pipeline.run(run_history_source(rows, table_format))
    except BaseException:
        _write_backlog(backlog, rows)
        raise
    backlog.unlink(missing_ok=True)


def _read_backlog(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows: list[dict[str, Any]] = orjson.loads(path.read_bytes())
    for row in rows:
        for name in ("started_at", "finished_at"):
            row[name] = datetime.fromisoformat(row[name]) if row[name] else None
    return rows


def _write_backlog(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps(rows))
    temporary.replace(path)


def read_runs(sql: LakeSql, limit: int, *, reconciles: bool = False) -> list[dict[str, Any]]:
    """The newest `limit` runs (only reconciles, if asked), newest first."""
    names = RUNS.names
    columns = ", ".join(sql.column(name) for name in names)
    where = f"WHERE {sql.column('reconcile')} " if reconciles else ""
    query = (
        f"SELECT {columns} FROM {sql.table(RUNS.name)} {where}"
        f"ORDER BY {sql.column('started_at')} DESC LIMIT {int(limit)}"
    )
    runs = [dict(zip(names, row, strict=True)) for row in sql.rows(query)]
    for run in runs:
        for name in _JSON_COLUMNS:
            if isinstance(run[name], str | bytes):
                run[name] = orjson.loads(run[name])
        for name in ("started_at", "finished_at"):
            if isinstance(run[name], datetime) and run[name].tzinfo is None:
                run[name] = run[name].replace(tzinfo=UTC)  # Delta read back without a zone
    return runs


def _now() -> str:
    return datetime.now(UTC).isoformat()
