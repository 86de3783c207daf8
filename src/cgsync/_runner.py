"""The sync runner: a dlt pipeline run in checkpoints, under the lake's locks, then the views
and the run's row in the lake's history.

One `run_sync` is one sync. It runs the pipeline in a loop; each run extracts at most
`checkpoint_pages` pages per resource (fewer if `checkpoint_seconds` run out first) and commits
their data together with the resource state (the cursors) in one load package. The loop ends
when every resource reports its cycle complete. A killed sync therefore loses at most one
checkpoint of API work; the next one first loads what the killed one left extracted, then
resumes from the stored cursors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import dlt
import httpx
from dlt.pipeline.exceptions import PipelineStepFailed

from cgsync._checkpoints import ANSWER_PERIOD_REFUSED, FAILED, walk_state
from cgsync._client import ApiClient
from cgsync._config import SyncOptions, api_client_arguments
from cgsync._dlt import (
    destination_kind,
    is_duckdb_load_conflict,
    is_duckdb_out_of_memory,
    open_iceberg_catalog,
    reset_staging_deduplicated,
    sync_destination_once,
)
from cgsync._endpoints import parse_resources
from cgsync._errors import dlt_errors, one_line
from cgsync._exceptions import ApiError, CGSyncError
from cgsync._lake import (
    DestinationLock,
    System,
    TableFormat,
    build_pipeline,
    check_system,
    destination_lock,
    lake_table_format,
    local_lock,
)
from cgsync._lake_sql import (
    count_rejected,
    lake_counts,
    lake_sql,
    loaded_tables,
    table_columns,
    write_views,
)
from cgsync._logs import log_event
from cgsync._pages import ReadAhead
from cgsync._reconcile import check_reconcile, delete_unlisted, unlisted_keys
from cgsync._runs import HistoryDeferred, record_run, run_row
from cgsync._summary import PageCounter, ResourceSummary, SyncSummary
from cgsync._tuning import load_one_job_at_a_time, raise_duckdb_memory_limit
from cgsync._walks import PageCallback
from cgsync.settings import ATOMIC_LOCAL_DESTINATIONS, SOURCE_NAME
from cgsync.source import customergauge_source

__all__ = ["run_sync"]

_T = TypeVar("_T")


def run_sync(
    options: SyncOptions,
    *,
    on_page: PageCallback | None = None,
    transport: httpx.BaseTransport | None = None,
) -> SyncSummary:
    """Run one sync to completion: checkpoints until every resource is done, then the views.

    `transport` replaces the network (as in httpx), e.g. to replay recorded pages.
    Raises a CGSyncError (with its exit code) on failure; the last checkpoint stays.
    """
    chosen = parse_resources(options.endpoints)
    if options.reconcile:
        check_reconcile(options)
    client = ApiClient(**api_client_arguments(options), transport=transport)  # no request yet
    # The source validates its arguments when called: before the lock and any request.
    customergauge_source(options, client=client)
    pipeline = build_pipeline(options.lake)
    with local_lock(pipeline), destination_lock(pipeline) as lock, client:
        system = System.of(client.api_url, client.client_id)
        if _table_format(pipeline, options) == "iceberg":
            prepare_iceberg_catalog(pipeline)
        _check_lake_system(pipeline, system, options)
        summary = SyncSummary(
            pipeline_name=options.lake.pipeline_name,
            destination=_destination_kind(pipeline),
            dataset=options.lake.dataset,
            started_at=datetime.now(UTC),
            resources={endpoint.resource: ResourceSummary() for endpoint in chosen},
            reconcile=options.reconcile,
        )
        log_event(
            "sync_started",
            "sync of %s into %s dataset %s",
            system,
            summary.destination,
            summary.dataset,
            destination=summary.destination,
            dataset=summary.dataset,
            pipeline_name=summary.pipeline_name,
            api_host=system.api_host,
            resources=list(summary.resources),
            full_refresh=options.full_refresh,
            reconcile=options.reconcile,
            parallel=options.parallel,
        )
        try:
            counter = PageCounter(summary, on_page)
            try:
                failures = _checkpoint_loop(pipeline, options, client, summary, counter, lock)
            finally:
                stats = client.stats
                summary.api_calls, summary.token_calls = stats.api_calls, stats.token_calls
                summary.retries = dict(stats.retries)
            # The reconcile's search and the counts need DuckDB's memory the loads left used.
            lock.checkpoint_duckdb()
            if options.reconcile and not failures:
                stale = _within_memory(pipeline, lambda: unlisted_keys(pipeline, summary))
                delete_unlisted(
                    pipeline,
                    summary,
                    stale,
                    _table_format(pipeline, options),
                    run=lambda data: _run_within_memory(pipeline, data, lock=lock),
                )
                lock.checkpoint_duckdb()
            _finish(pipeline, summary)
            if failures:
                raise ApiError("; ".join(failures))
        except KeyboardInterrupt:
            _record(pipeline, summary, options, system, "interrupted", "interrupted")
            raise
        except CGSyncError as exc:
            _record(pipeline, summary, options, system, "failed", str(exc))
            raise
        _record(pipeline, summary, options, system, "ok")
        return summary


def _check_lake_system(pipeline: dlt.Pipeline, system: System, options: SyncOptions) -> None:
    """Refuse, before anything is written, a sync of another system into this lake."""
    with dlt_errors(pipeline):
        sync_destination_once(pipeline)  # the lake's own state, also on a fresh machine
    stored = System.stored(pipeline.state.get("sources", {}).get(SOURCE_NAME, {}).get("system"))
    check_system(stored, system, new_client_id=options.new_client_id)


def _checkpoint_loop(
    pipeline: dlt.Pipeline,
    options: SyncOptions,
    client: ApiClient,
    summary: SyncSummary,
    counter: PageCounter,
    lock: DestinationLock,
) -> list[str]:
    """Checkpoints until every resource has ended its cycle or failed; the failures, each
    naming its resource and cursor (the others went on)."""
    fmt = _table_format(pipeline, options)
    # A walk that a checkpoint stops reads on into `read_ahead`, for the next checkpoint.
    with dlt_errors(pipeline), closing(ReadAhead()) as read_ahead:
        # A package a stopped sync left to load may have started loading: its staging must be
        # deduplicated (dlt runs its load jobs again). A fresh package skips that where its
        # jobs run once (ATOMIC_LOCAL_DESTINATIONS; each CGID comes once per checkpoint).
        staging_deduplicated = (
            reset_staging_deduplicated(pipeline)
            and _destination_kind(pipeline) in ATOMIC_LOCAL_DESTINATIONS
        )
        # What a killed sync left extracted (its data and its cursors) loads before anything
        # is fetched. The state came from the lake already (_check_lake_system).
        if pipeline.has_pending_data:
            _run_within_memory(pipeline, lock=lock)
        pending = list(summary.resources)
        failures: list[str] = []
        full_refresh = options.full_refresh or options.reconcile
        while pending:
            source = customergauge_source(
                replace(options, endpoints=tuple(pending), full_refresh=full_refresh),
                client=client,
                read_ahead=read_ahead,
                on_page=counter,
                on_refresh_page=counter.refresh,
                table_format=fmt,
                staging_deduplicated=staging_deduplicated,
            )
            _run_within_memory(pipeline, source, lock=lock)
            summary.checkpoints += 1
            full_refresh = False
            state = pipeline.state.get("sources", {}).get(SOURCE_NAME, {})
            _note_fallbacks(state, summary)
            for name in list(pending):
                walk = walk_state(state, name, options.filters.key)
                summary.resources[name].cursor = walk.get("cursor")
                failure = state.get("resources", {}).get(name, {}).get(FAILED)
                if failure:
                    # This resource alone stops; its last checkpoint is in the lake.
                    failures.append(f"{name} (cursor {walk.get('cursor')}): {failure}")
                    pending.remove(name)
                    log_event(
                        "resource_failed",
                        "%s stopped at cursor %s: %s",
                        name,
                        walk.get("cursor"),
                        failure,
                        level=logging.WARNING,  # the sync's own error follows
                        resource=name,
                        cursor=walk.get("cursor"),
                        error=failure,
                    )
                elif walk.get("complete"):
                    pending.remove(name)
            _log_checkpoint(summary, pending)
    return failures


def _log_checkpoint(summary: SyncSummary, pending: list[str]) -> None:
    """The `checkpoint` event: what the sync has committed so far, per resource."""
    done = {
        name: {
            "pages": resource.pages,
            "records": resource.records,
            "refresh_records": resource.refresh_records,
            "cursor": resource.cursor,
            "complete": name not in pending,
        }
        for name, resource in summary.resources.items()
    }
    records = sum(resource.records for resource in summary.resources.values())
    log_event(
        "checkpoint",
        "checkpoint %d committed: %s records so far",
        summary.checkpoints,
        f"{records:,}",
        checkpoint=summary.checkpoints,
        seconds=round(summary.seconds, 3),
        resources=done,
    )


def _note_fallbacks(source_state: Mapping[str, Any], summary: SyncSummary) -> None:
    for name in summary.resources:
        if source_state.get("resources", {}).get(name, {}).get(ANSWER_PERIOD_REFUSED):
            note = (
                f"{name}: the API refuses period[field]=date_survey_response, so late answers "
                "are re-read from a cursor kept --v6-lookback back (docs/sync.md)"
            )
            if note not in summary.notes:
                summary.notes.append(note)


def prepare_iceberg_catalog(pipeline: dlt.Pipeline) -> None:
    """Open the Iceberg catalog once before loading: a SQL catalog creates its own tables when
    first opened, and dlt's parallel load jobs would race to do it (transient failures)."""
    try:
        open_iceberg_catalog(pipeline)
    except Exception as exc:  # noqa: BLE001 - whatever the catalog's driver raises is one line
        raise ApiError(
            f"cannot open the Iceberg catalog (iceberg_catalog.iceberg_catalog_config in dlt's "
            f"config, or .pyiceberg.yaml): {one_line(exc)}"
        ) from None


def _run_within_memory(
    pipeline: dlt.Pipeline, data: Any = None, *, lock: DestinationLock | None = None
) -> None:
    """`pipeline.run(data)`; a DuckDB load that runs short of memory is loaded again (its
    package is still pending) after each step `_ease_duckdb` takes, until it loads or no step is
    left. Before each, `lock` starts the DuckDB database afresh (`restart_duckdb`: a DELETE that
    ran out of memory would make every later merge of its table conflict)."""
    try:
        pipeline.run() if data is None else pipeline.run(data)
        return
    except PipelineStepFailed as failure:
        last = failure
    while _ease_duckdb(pipeline, last, loading=True):
        if lock is not None:
            del last  # its frames hold dlt's clients of the failed load
            lock.restart_duckdb()
        try:
            pipeline.run()
            return
        except PipelineStepFailed as again:
            last = again
    raise last


def _ease_duckdb(pipeline: dlt.Pipeline, error: BaseException, *, loading: bool) -> bool:
    """Whether `error` is DuckDB running short of memory and one more step was taken against it
    (event `duckdb_load_eased`). Short of memory: out of it, or, `loading`, a load's jobs then
    conflicting. The steps: for a load first one job at a time, then the sync's own memory limit
    one step up (cgsync._tuning); the user's own limit and workers are never changed."""
    if _destination_kind(pipeline) != "duckdb":
        return False
    if not (is_duckdb_out_of_memory(error) or (loading and is_duckdb_load_conflict(error))):
        return False
    if loading and load_one_job_at_a_time():
        change: dict[str, Any] = {"load_workers": 1}
    elif (limit := raise_duckdb_memory_limit()) is not None:
        change = {"memory_limit": limit}
    else:
        return False
    log_event(
        "duckdb_load_eased",
        "DuckDB ran short of memory: doing it again with %s",
        ", ".join(f"{key} {value}" for key, value in change.items()),
        level=logging.WARNING,
        **change,
    )
    return True


def _finish(pipeline: dlt.Pipeline, summary: SyncSummary) -> None:
    """Regenerate the views (SQL destinations), then count rows and open non-responses. It only
    reads or replaces views, so `_within_memory` may do it again when DuckDB runs short of
    memory (before `DestinationLock.checkpoint_duckdb`, it did after a 10M-record full
    refresh)."""
    columns = table_columns(pipeline)

    def views_and_counts() -> None:
        write_views(pipeline, columns)
        with lake_sql(pipeline) as sql:  # one session: a filesystem lake is read once
            summary.row_counts, summary.open_non_responses = lake_counts(sql, columns)
            tables = loaded_tables(pipeline)
            summary.rejected_values = count_rejected(sql, tables, since=summary.started_at)

    _within_memory(pipeline, views_and_counts)


def _within_memory(pipeline: dlt.Pipeline, step: Callable[[], _T]) -> _T:
    """`step()`, which only reads the lake (or replaces views); again after each step
    `_ease_duckdb` takes when DuckDB runs out of memory (a 10M-record reconcile's search for
    unlisted records did at 96 MB)."""
    with dlt_errors(pipeline):
        while True:
            try:
                return step()
            except Exception as exc:
                if not _ease_duckdb(pipeline, exc, loading=False):
                    raise


def _record(
    pipeline: dlt.Pipeline,
    summary: SyncSummary,
    options: SyncOptions,
    system: System,
    outcome: str,
    error: str | None = None,
) -> None:
    """Finish `summary` and append it to the lake's run history (`_cgsync_runs`).

    A history that cannot be written (the destination is what failed) is a warning: the
    sync's own outcome stands.
    """
    summary.finished_at = datetime.now(UTC)
    summary.outcome = outcome
    summary.error = error
    context = {
        "full_refresh": options.full_refresh,
        "reconcile": options.reconcile,
        "parallel": options.parallel,
        "api_host": system.api_host,
        "client_id": system.client_id,
    }
    try:
        with dlt_errors(pipeline):
            fmt = _table_format(pipeline, options)
            record_run(pipeline, run_row(summary.to_dict(), **context), fmt)
    except (CGSyncError, HistoryDeferred, KeyboardInterrupt) as exc:
        log_event(
            "history_deferred",
            "the next sync adds this run to the lake's history: %s",
            exc,
            level=logging.WARNING,
            reason=str(exc),
        )
    log_event(
        "sync_finished",
        "sync %s in %.1fs",
        outcome,
        summary.seconds,
        summary=summary.to_dict(),
    )


def _table_format(pipeline: dlt.Pipeline, options: SyncOptions) -> TableFormat | None:
    return lake_table_format(options.lake, pipeline.destination)


def _destination_kind(pipeline: dlt.Pipeline) -> str:
    return destination_kind(pipeline.destination)
