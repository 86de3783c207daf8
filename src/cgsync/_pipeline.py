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
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import httpx
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.pipeline.exceptions import PipelineStepFailed

from cgsync import _views
from cgsync._checkpoints import ANSWER_PERIOD_REFUSED, FAILED, walk_state
from cgsync._client import ApiClient, resolve_urls
from cgsync._endpoints import parse_resources
from cgsync._exceptions import (
    ApiError,
    CGSyncError,
    ConfigError,
    LakeNotSyncedError,
    SyncLockedError,
    exception_chain,
)
from cgsync._lake import (
    Lake,
    LakeSql,
    System,
    build_pipeline,
    check_system,
    destination_kind,
    destination_lock,
    duckdb_file,
    duckdb_lock_conflict,
    duckdb_locked_message,
    lake_sql,
    lake_table_format,
    local_lock,
)
from cgsync._logs import log_event
from cgsync._pages import ReadAhead
from cgsync._reconcile import delete_from_iceberg, stale_keys, tombstone_source
from cgsync._runs import HistoryDeferred, read_runs, record_run, run_row
from cgsync._walks import Filters, PageCallback
from cgsync.settings import (
    ATOMIC_LOCAL_DESTINATIONS,
    DEFAULT_CHECKPOINT_PAGES,
    DEFAULT_CHECKPOINT_SECONDS,
    DEFAULT_REFRESH_WINDOW,
    DEFAULT_RESOURCES,
    DEFAULT_SOURCE_TIMEZONE,
    DEFAULT_V6_LOOKBACK,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_DUCKDB_GLOBAL_CONFIG,
    OWN_TABLE_PREFIX,
    RECENT_RUNS,
    REJECTED_VALUES_TABLE,
    RUNS_TABLE,
    SYNCED_AT_COLUMN,
)
from cgsync.source import (
    SOURCE_NAME,
    STAGING_DEDUPLICATED_HINT,
    TableFormat,
    customergauge_source,
)

__all__ = ["Lake", "LakeSql", "SyncOptions", "SyncSummary", "lake_sql", "read_status", "run_sync"]

RECONCILED = ("responses", "non_responses")
"""The listings a reconcile walks: a record in neither is gone."""


@dataclass(frozen=True)
class SyncOptions:
    """Everything that configures one sync; the command line builds it from flags and env."""

    client_id: str | None = None
    client_secret: str | None = None
    region: str | None = None
    auth_url: str | None = None
    api_url: str | None = None
    endpoints: tuple[str, ...] = DEFAULT_RESOURCES
    expansions: tuple[str, ...] | None = None
    per_page: int | None = None
    filters: Filters = field(default_factory=Filters)
    source_timezone: str = DEFAULT_SOURCE_TIMEZONE
    refresh_window: timedelta = DEFAULT_REFRESH_WINDOW
    v6_lookback: timedelta = DEFAULT_V6_LOOKBACK
    checkpoint_pages: int = DEFAULT_CHECKPOINT_PAGES
    checkpoint_seconds: float | None = DEFAULT_CHECKPOINT_SECONDS
    """A checkpoint ends after `checkpoint_pages` or this many seconds (None: pages only)."""
    full_refresh: bool = False
    parallel: int = 1
    """Windows walked side by side in a v7 resource's initial load (see docs/sync.md)."""
    reconcile: bool = False
    """Walk everything again, then delete what the API no longer lists (cgsync._reconcile)."""
    new_client_id: bool = False
    """Move the lake to this client id of the system it mirrors (rotated credentials)."""
    lake: Lake = field(default_factory=Lake)

    def __repr__(self) -> str:  # never the secret
        return f"SyncOptions(lake={self.lake!r}, endpoints={self.endpoints!r})"


@dataclass
class ResourceSummary:
    """What one resource did in one sync."""

    pages: int = 0
    records: int = 0
    refresh_pages: int = 0
    """Pages of the refresh window: records read again to merge their changes."""
    refresh_records: int = 0
    removed: int = 0
    """Records a reconcile deleted: the API no longer lists them."""
    seconds: float = 0.0
    cursor: Any = None

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass
class SyncSummary:
    """The outcome of one sync, printed as a table or as JSON."""

    pipeline_name: str
    destination: str
    dataset: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = "running"
    error: str | None = None
    checkpoints: int = 0
    resources: dict[str, ResourceSummary] = field(default_factory=dict)
    api_calls: int = 0
    token_calls: int = 0
    retries: dict[str, int] = field(default_factory=dict)
    row_counts: dict[str, int] = field(default_factory=dict)
    open_non_responses: int | None = None
    rejected_values: int = 0
    """Values this sync could not read (NULL in their columns, text in _cgsync_rejected_values)."""
    reconcile: bool = False
    notes: list[str] = field(default_factory=list)
    """What the user should know about how this sync ran, a line each."""

    @property
    def seconds(self) -> float:
        end = self.finished_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        data["seconds"] = round(self.seconds, 3)
        for name, resource in self.resources.items():
            data["resources"][name]["records_per_second"] = round(resource.records_per_second, 1)
        return data


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
        _check_reconcile(options)
    client = _api_client(options, transport)
    # The source validates its arguments when called: before the lock and any request.
    customergauge_source(**_source_arguments(options), client=client)
    pipeline = build_pipeline(options.lake)
    with local_lock(pipeline), destination_lock(pipeline), client:
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
            counter = _PageCounter(summary, on_page)
            try:
                failures = _checkpoint_loop(pipeline, options, client, summary, counter)
            finally:
                stats = client.stats
                summary.api_calls, summary.token_calls = stats.api_calls, stats.token_calls
                summary.retries = dict(stats.retries)
            if options.reconcile and not failures:
                _delete_unlisted(pipeline, summary, _table_format(pipeline, options))
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


def _check_reconcile(options: SyncOptions) -> None:
    """A reconcile judges a record gone only when neither v7 listing holds it: both are walked
    in full, without filters."""
    missing = [name for name in RECONCILED if name not in options.endpoints]
    if missing:
        raise ConfigError(
            f"--reconcile walks both listings: add {', '.join(missing)} to --endpoints"
        )
    if options.filters.key != "all":
        raise ConfigError("--reconcile walks everything: drop the filters (--cgid, --since...)")


def _delete_unlisted(pipeline: dlt.Pipeline, summary: SyncSummary, fmt: TableFormat | None) -> None:
    """After a reconcile's complete walks: delete, from every table, the records the API no
    longer lists (their rows were not synced by this run)."""
    columns = _table_columns(pipeline)
    mains = [name for name in summary.resources if name in columns]
    tables = [name for name in columns if name.split("__")[0] in mains]
    with _dlt_errors(pipeline):
        with lake_sql(pipeline) as sql:
            stale = stale_keys(sql, tables, mains, summary.started_at)
        if any(stale.values()) and fmt == "iceberg":
            delete_from_iceberg(pipeline, stale)
        elif any(stale.values()):
            pipeline.run(tombstone_source(stale, fmt))
    for name in mains:
        summary.resources[name].removed = len(stale.get(name, []))


def _check_lake_system(pipeline: dlt.Pipeline, system: System, options: SyncOptions) -> None:
    """Refuse, before anything is written, a sync of another system into this lake."""
    with _dlt_errors(pipeline):
        pipeline.sync_destination()  # the lake's own state, also on a fresh machine
    stored = System.stored(pipeline.state.get("sources", {}).get(SOURCE_NAME, {}).get("system"))
    check_system(stored, system, new_client_id=options.new_client_id)


def _api_client(options: SyncOptions, transport: httpx.BaseTransport | None) -> ApiClient:
    """The one client of a sync: one token for all its checkpoints (no request yet)."""
    client_id, client_secret = _credentials(options)
    token_url, api_url = resolve_urls(
        options.region, auth_url=options.auth_url, api_url=options.api_url
    )
    return ApiClient(
        client_id=client_id,
        client_secret=client_secret,
        auth_url=token_url,
        api_url=api_url,
        region=options.region,
        transport=transport,
    )


def _checkpoint_loop(
    pipeline: dlt.Pipeline,
    options: SyncOptions,
    client: ApiClient,
    summary: SyncSummary,
    counter: _PageCounter,
) -> list[str]:
    """Checkpoints until every resource has ended its cycle or failed; the failures, each
    naming its resource and cursor (the others went on)."""
    fmt = _table_format(pipeline, options)
    staging_deduplicated = _destination_kind(pipeline) in ATOMIC_LOCAL_DESTINATIONS
    # A walk that a checkpoint stops reads on into `read_ahead`, for the next checkpoint.
    with _dlt_errors(pipeline), closing(ReadAhead()) as read_ahead:
        # Restores the state from the destination if need be, and loads what a killed sync
        # left extracted (its data and its cursors) before anything is fetched.
        deduplicate_resumed_packages(pipeline)
        pipeline.run()
        pending = list(summary.resources)
        failures: list[str] = []
        full_refresh = options.full_refresh or options.reconcile
        while pending:
            source = customergauge_source(
                **_source_arguments(
                    options,
                    endpoints=pending,
                    full_refresh=full_refresh,
                    table_format=fmt,
                    staging_deduplicated=staging_deduplicated,
                    client=client,
                    read_ahead=read_ahead,
                    on_page=counter,
                    on_refresh_page=counter.refresh,
                )
            )
            pipeline.run(source)
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


def deduplicate_resumed_packages(pipeline: dlt.Pipeline) -> None:
    """Turn the staging deduplication back on in the packages that a stopped sync left to load.

    dlt runs again the load jobs that a killed sync left running, and a staging insert run
    twice holds its rows twice. A fresh package skips the deduplication where its jobs run
    once (ATOMIC_LOCAL_DESTINATIONS; each CGID comes once per checkpoint), one that may have
    started loading must not.
    """
    # dlt has no public way to change a package's schema; this is the one its loader reads.
    packages = pipeline._get_load_storage().normalized_packages
    for load_id in pipeline.list_normalized_load_packages():
        schema = packages.load_schema(load_id)
        marked = [t for t in schema.tables.values() if t.get(STAGING_DEDUPLICATED_HINT)]
        for table in marked:
            table[STAGING_DEDUPLICATED_HINT] = False  # type: ignore[literal-required]
        if marked:
            packages.save_schema(load_id, schema)


def prepare_iceberg_catalog(pipeline: dlt.Pipeline) -> None:
    """Open the Iceberg catalog once before loading: a SQL catalog creates its own tables when
    first opened, and dlt's parallel load jobs would race to do it (transient failures)."""
    try:
        with pipeline.destination_client() as client:
            client.get_open_table_catalog("iceberg")  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - whatever the catalog's driver raises is one line
        raise ApiError(
            f"cannot open the Iceberg catalog (iceberg_catalog.iceberg_catalog_config in dlt's "
            f"config, or .pyiceberg.yaml): {_one_line(exc)}"
        ) from None


class _PageCounter:
    """Counts pages and records per resource, then hands them on to the progress display.

    A resource's seconds run from the start of the sync to its last page (its first page
    took time too, and resources are walked side by side).
    """

    def __init__(self, summary: SyncSummary, forward: PageCallback | None) -> None:
        self._summary = summary
        self._forward = forward
        self._started = time.monotonic()

    def __call__(self, resource: str, records: int) -> None:
        counts = self._summary.resources[resource]
        counts.pages += 1
        counts.records += records
        counts.seconds = time.monotonic() - self._started
        if self._forward is not None:
            self._forward(resource, records)

    def refresh(self, resource: str, records: int) -> None:
        """A page of a refresh window: records read again, counted apart."""
        counts = self._summary.resources[resource]
        counts.refresh_pages += 1
        counts.refresh_records += records
        counts.seconds = time.monotonic() - self._started


def _finish(pipeline: dlt.Pipeline, summary: SyncSummary) -> None:
    """Regenerate the views (SQL destinations), then count rows and open non-responses."""
    columns = _table_columns(pipeline)
    with _dlt_errors(pipeline):
        if _destination_kind(pipeline) != "filesystem":
            with pipeline.sql_client() as sql:
                for statement in _views.view_statements(
                    sql.make_qualified_table_name, sql.escape_column_name, columns
                ):
                    sql.execute_sql(statement)
        summary.row_counts, summary.open_non_responses = lake_counts(pipeline, columns)
        summary.rejected_values = count_rejected(pipeline, since=summary.started_at)


def count_rejected(pipeline: dlt.Pipeline, since: datetime | None = None) -> int:
    """Rejected values in the lake (read since `since`, if given)."""
    if REJECTED_VALUES_TABLE not in pipeline.default_schema.data_table_names(seen_data_only=True):
        return 0
    with lake_sql(pipeline) as sql:
        where = ""
        if since is not None:
            where = f" WHERE {sql.column(SYNCED_AT_COLUMN)} >= {sql.instant(since)}"
        return sql.count(f"SELECT 1 FROM {sql.table(REJECTED_VALUES_TABLE)}{where}")


def lake_counts(
    pipeline: dlt.Pipeline, columns: Mapping[str, Any] | None = None
) -> tuple[dict[str, int], int | None]:
    """Rows per data table, and the number of open non-responses (None: no such tables)."""
    columns = _table_columns(pipeline) if columns is None else columns
    if not columns:
        return {}, None
    with lake_sql(pipeline) as sql:
        counts = {name: sql.count(f"SELECT 1 FROM {sql.table(name)}") for name in sorted(columns)}
        responses = _views.responses_table(columns)
        if responses is None or _views.NON_RESPONSES not in columns:
            return counts, None
        return counts, sql.count(_views.open_non_responses_sql(sql.table, sql.column, responses))


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
        with _dlt_errors(pipeline):
            pipeline.sync_destination()
            source_state = pipeline.state.get("sources", {}).get(SOURCE_NAME)
            if not source_state:
                where = database or f"{_destination_kind(pipeline)} dataset {lake.dataset!r}"
                raise LakeNotSyncedError(
                    f"the lake at {where} was never synced: run `cgsync sync` first, or pass "
                    "the lake's --destination and --dataset"
                )
            counts, open_count = lake_counts(pipeline)
            rejected = count_rejected(pipeline)
            runs: list[dict[str, Any]] = []
            reconciles: list[dict[str, Any]] = []
            if RUNS_TABLE in pipeline.default_schema.data_table_names(seen_data_only=True):
                with lake_sql(pipeline) as sql:
                    runs = read_runs(sql, RECENT_RUNS)
                    reconciles = read_runs(sql, 1, reconciles=True)
    resources = source_state.get("resources", {})
    last_ok = next((run for run in runs if run["outcome"] == "ok"), None)
    system = System.stored(source_state.get("system"))
    return {
        "pipeline_name": lake.pipeline_name,
        "destination": _destination_kind(pipeline),
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
        with _dlt_errors(pipeline):
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


def _table_columns(pipeline: dlt.Pipeline) -> dict[str, list[str]]:
    """The data tables this source has loaded, with their column names."""
    if not pipeline.default_schema_name:
        return {}
    schema = pipeline.default_schema
    return {
        name: list(schema.get_table_columns(name))
        for name in schema.data_table_names(seen_data_only=True)
        if not name.startswith(OWN_TABLE_PREFIX)
    }


def _source_arguments(options: SyncOptions, **overrides: Any) -> dict[str, Any]:
    """The source's arguments for `options`, with `overrides`."""
    arguments = dict(
        endpoints=list(options.endpoints),
        expansions=list(options.expansions) if options.expansions is not None else None,
        per_page=options.per_page,
        **asdict(options.filters),
        source_timezone=options.source_timezone,
        refresh_window=options.refresh_window,
        v6_lookback=options.v6_lookback,
        checkpoint_pages=options.checkpoint_pages,
        checkpoint_seconds=options.checkpoint_seconds,
        parallel=options.parallel,
    )
    return {**arguments, **overrides}


def _credentials(options: SyncOptions) -> tuple[str, str]:
    """The client id and secret: from the options, else from dlt's config and secrets."""
    client_id = options.client_id or _dlt_secret("client_id")
    client_secret = options.client_secret or _dlt_secret("client_secret")
    if not client_id or not client_secret:
        raise ConfigError(
            f"missing credentials: set {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} "
            f"(or sources.{SOURCE_NAME}.client_id/client_secret in .dlt/secrets.toml)"
        )
    return client_id, client_secret


def _dlt_secret(name: str) -> str | None:
    value: Any = dlt.secrets.get(f"sources.{SOURCE_NAME}.{name}")
    return str(value) if value else None


def _table_format(pipeline: dlt.Pipeline, options: SyncOptions) -> TableFormat | None:
    return lake_table_format(options.lake, pipeline.destination)


def _destination_kind(pipeline: dlt.Pipeline) -> str:
    return destination_kind(pipeline.destination)


@contextmanager
def _dlt_errors(pipeline: dlt.Pipeline) -> Iterator[None]:
    """Re-raise what dlt wrapped: our CGSyncError or a Ctrl-C; other failures as one line."""
    try:
        yield
    except CGSyncError:
        raise
    except Exception as exc:
        cause = _wrapped_cause(exc)
        if cause is not None:
            raise cause from None
        conflict = duckdb_lock_conflict(exc)
        if conflict is not None:
            raise SyncLockedError(duckdb_locked_message(conflict)) from None
        if isinstance(exc, ConfigFieldMissingException):
            raise ConfigError(f"destination configuration: {_one_line(exc)}") from None
        if "Out of Memory Error" in _chain_text(exc) and _destination_kind(pipeline) == "duckdb":
            raise ApiError(
                f"{getattr(exc, 'step', 'sync')} into duckdb ran out of DuckDB's memory_limit: "
                f'raise it, e.g. {ENV_DUCKDB_GLOBAL_CONFIG}=\'{{"memory_limit": "512MB"}}\''
            ) from None
        if isinstance(exc, (PipelineStepFailed, OSError)):
            raise ApiError(
                f"{getattr(exc, 'step', 'sync')} into {_destination_kind(pipeline)} failed: "
                f"{_one_line(exc)}"
            ) from None
        raise


def _wrapped_cause(exc: BaseException) -> CGSyncError | KeyboardInterrupt | None:
    """The CGSyncError or KeyboardInterrupt that `exc` wraps, if any."""
    for current in exception_chain(exc):
        if isinstance(current, CGSyncError | KeyboardInterrupt):
            return current
    return None


def _chain_text(exc: BaseException) -> str:
    """The messages of `exc` and of every exception it wraps."""
    return "\n".join(map(str, exception_chain(exc)))


def _one_line(exc: BaseException) -> str:
    cause = exc
    while isinstance(cause, PipelineStepFailed) and cause.__cause__ is not None:
        cause = cause.__cause__
    text = " ".join(str(cause).split())
    return text[:300] or type(cause).__name__
