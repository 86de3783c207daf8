"""`cgsync status`: what the lake says of itself, read from the lake alone."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cgsync._dlt import destination_kind
from cgsync._errors import dlt_errors
from cgsync._exceptions import LakeNotSyncedError
from cgsync._lake import Lake, System, build_pipeline, duckdb_file
from cgsync._lake_sql import count_rejected, lake_counts, lake_sql, loaded_tables, table_columns
from cgsync._runs import read_runs
from cgsync.settings import RECENT_RUNS, RUNS_TABLE, SOURCE_NAME

__all__ = ["read_status"]


def read_status(lake: Lake) -> dict[str, Any]:
    """What `cgsync status` shows, all read from the lake (so it is the same on any machine):
    the system it mirrors, its cursors, recent runs, the age of the last good one, row counts
    and open non-responses. A lake that was never synced raises LakeNotSyncedError; nothing is
    created, here or in the lake."""
    database = duckdb_file(lake)
    if database is not None and not database.is_file():
        raise LakeNotSyncedError(
            f"no lake at {database}: it was never synced (run `cgsync sync` here first, or pass "
            "the lake's --destination)"
        )
    with tempfile.TemporaryDirectory(prefix="cgsync-status-") as workdir:
        pipeline = build_pipeline(lake, pipelines_dir=Path(workdir))
        with dlt_errors(pipeline):
            pipeline.sync_destination()
            source_state = pipeline.state.get("sources", {}).get(SOURCE_NAME)
            if not source_state:
                where = (
                    database or f"{destination_kind(pipeline.destination)} dataset {lake.dataset!r}"
                )
                raise LakeNotSyncedError(
                    f"the lake at {where} was never synced: run `cgsync sync` first, or pass "
                    "the lake's --destination and --dataset"
                )
            columns, tables = table_columns(pipeline), loaded_tables(pipeline)
            runs: list[dict[str, Any]] = []
            reconciles: list[dict[str, Any]] = []
            with lake_sql(pipeline) as sql:  # one session: a filesystem lake is read once
                counts, open_count = lake_counts(sql, columns)
                rejected = count_rejected(sql, tables)
                if RUNS_TABLE in tables:
                    runs = read_runs(sql, RECENT_RUNS)
                    reconciles = read_runs(sql, 1, reconciles=True)
    resources = source_state.get("resources", {})
    last_ok = next((run for run in runs if run["outcome"] == "ok"), None)
    system = System.stored(source_state.get("system"))
    return {
        "pipeline_name": lake.pipeline_name,
        "destination": destination_kind(pipeline.destination),
        "dataset": lake.dataset,
        "location": str(database) if database else None,
        "system": system.as_state() if system else None,
        "cursors": {
            name: {key: _public_walk(walk) for key, walk in state.get("walks", {}).items()}
            for name, state in resources.items()
        },
        "last_run": runs[0] if runs else None,
        "last_success": last_ok,
        "last_success_age_seconds": (
            round((datetime.now(UTC) - last_ok["finished_at"]).total_seconds(), 1)
            if last_ok
            else None
        ),
        "recent_runs": runs,
        "last_reconcile": reconciles[0] if reconciles else None,
        "row_counts": counts,
        "open_non_responses": open_count,
        "rejected_values": rejected,
    }


def _public_walk(walk: Mapping[str, Any]) -> dict[str, Any]:
    shown = {"cursor": walk.get("cursor"), "complete": walk.get("complete", False)}
    if walk.get("ladder"):
        shown["ladder_rungs"] = len(walk["ladder"])
    return shown
