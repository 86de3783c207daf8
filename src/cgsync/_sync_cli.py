"""`cgsync sync`, `cgsync status` and `cgsync demo`.

Progress and errors go to stderr; stdout carries only the summary (a table, or JSON with
`--json`), so that cron mails and scripts stay clean. Exit codes: 0 done, 2 bad usage or
configuration (also another system than the lake mirrors), 3 authentication refused, 4 API or
data error, 5 locked (another sync of the lake is running), 6 `status` of a lake never synced,
130 interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from cgsync._exceptions import EXIT_INTERRUPTED, CGSyncError, ConfigError
from cgsync.settings import (
    DEFAULT_CHECKPOINT_PAGES,
    DEFAULT_CHECKPOINT_SECONDS,
    DEFAULT_DATASET,
    DEFAULT_DESTINATION,
    DEFAULT_LOG_FORMAT,
    DEFAULT_PARALLEL,
    DEFAULT_PIPELINE_NAME,
    DEFAULT_REFRESH_WINDOW,
    DEFAULT_REGION,
    DEFAULT_RESOURCES,
    DEFAULT_SOURCE_TIMEZONE,
    DEFAULT_TABLE_FORMAT,
    DEFAULT_V6_LOOKBACK,
    ENV_API_URL,
    ENV_AUTH_URL,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_REGION,
    LOG_FORMATS,
    REGIONS,
)

# Imported where they are used, when a command runs: the sync's modules import dlt, DuckDB and
# Arrow (about a second), which `cgsync --help` and the other commands must not pay for.
if TYPE_CHECKING:
    from rich.progress import TaskID

    from cgsync._config import SyncOptions
    from cgsync._lake import TableFormat
    from cgsync._summary import SyncSummary

DEMO_DATABASE = "cgsync-demo.duckdb"
DEMO_PIPELINE = "cgsync_demo"
DEMO_RECORDS = 20_000
DEMO_ADVANCE = timedelta(hours=6)
DEMO_REPORT = "cgsync-demo-report.html"

EXIT_INTERNAL = 1
_DLT_SECRET_VARIABLE = "SOURCES__CUSTOMERGAUGE__CLIENT_SECRET"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 3600}

stderr = Console(stderr=True)

# The panels of `cgsync sync --help` (and `status`), in the order they are shown.
CREDENTIALS = "Credentials"
WHAT_TO_SYNC = "What to sync"
FILTERS = "Filters"
LIFECYCLE = "Lifecycle"
CHECKPOINTS = "Checkpoints"
LAKE = "Lake"
OUTPUT = "Output"

Destination = Annotated[
    str,
    typer.Option(
        help="duckdb (./cgsync.duckdb here), a path ending in .duckdb, or a dlt destination "
        "name: postgres, filesystem...",
        rich_help_panel=LAKE,
    ),
]
Dataset = Annotated[
    str, typer.Option(help="The dataset (schema) of the lake tables.", rich_help_panel=LAKE)
]
PipelineName = Annotated[
    str,
    typer.Option(help="The dlt pipeline name (its state in the lake).", rich_help_panel=LAKE),
]
PipelinesDir = Annotated[
    str | None,
    typer.Option(
        help="Where lakes keep local working state, a folder each (default: dlt's directory).",
        rich_help_panel=LAKE,
    ),
]
JsonOutput = Annotated[
    bool,
    typer.Option("--json", help="Print a machine-readable summary.", rich_help_panel=OUTPUT),
]


def parse_duration(text: str, flag: str) -> timedelta:
    """`72h`, `3d`, `90m`, `30s`, or a bare number of hours; `0` is zero."""
    match = _DURATION.match(text)
    if match is None:
        raise ConfigError(f"{flag} {text!r} is not a duration: use e.g. 72h, 3d, 90m or 0")
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _UNIT_SECONDS[unit])


def format_duration(duration: timedelta) -> str:
    """What `parse_duration` reads back: in the smallest unit that counts it whole in two digits
    (72h, 30d, 90m), else in the largest that counts it whole, else in seconds."""
    seconds = duration.total_seconds()
    counts = {unit: seconds / _UNIT_SECONDS[unit] for unit in "smhd"}
    whole = [unit for unit, count in counts.items() if count.is_integer()]
    if not whole:
        return f"{seconds}s"
    short = [unit for unit in whole if counts[unit] < 100]
    unit = short[0] if short else whole[-1]
    return f"{counts[unit]:.0f}{unit}"


def sync_command(
    client_id: Annotated[
        str | None,
        typer.Option(
            envvar=ENV_CLIENT_ID, help="Connected App client id.", rich_help_panel=CREDENTIALS
        ),
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(
            envvar=ENV_CLIENT_SECRET,
            help="Connected App client secret.",
            show_default=False,
            rich_help_panel=CREDENTIALS,
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            envvar=ENV_REGION,
            help=f"{', '.join(REGIONS[:-1])} or {REGIONS[-1]} (default {DEFAULT_REGION}).",
            rich_help_panel=CREDENTIALS,
        ),
    ] = None,
    auth_url: Annotated[
        str | None,
        typer.Option(envvar=ENV_AUTH_URL, help="Token URL override.", rich_help_panel=CREDENTIALS),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            envvar=ENV_API_URL, help="API base URL override.", rich_help_panel=CREDENTIALS
        ),
    ] = None,
    endpoints: Annotated[
        str,
        typer.Option(
            help="Comma-separated resources: responses, non_responses, responses_v6.",
            rich_help_panel=WHAT_TO_SYNC,
        ),
    ] = ",".join(DEFAULT_RESOURCES),
    with_: Annotated[
        str | None,
        typer.Option(
            "--with",
            help="Comma-separated expansions (default: all): tags, drivers, questions, properties.",
            rich_help_panel=WHAT_TO_SYNC,
        ),
    ] = None,
    per_page: Annotated[
        int | None,
        typer.Option(
            help="Page size (default: the endpoint's largest).", rich_help_panel=WHAT_TO_SYNC
        ),
    ] = None,
    period_field: Annotated[
        str | None, typer.Option(help="Date field of the period filter.", rich_help_panel=FILTERS)
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Period start, yyyy-mm-dd.", rich_help_panel=FILTERS)
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Period end, yyyy-mm-dd.", rich_help_panel=FILTERS)
    ] = None,
    cgid: Annotated[
        int | None, typer.Option(help="Only this CGID.", rich_help_panel=FILTERS)
    ] = None,
    outbound_filter: Annotated[
        str | None, typer.Option(help="An outbound filter reference.", rich_help_panel=FILTERS)
    ] = None,
    source_timezone: Annotated[
        str,
        typer.Option(
            help="The CustomerGauge system's time zone (IANA).", rich_help_panel=LIFECYCLE
        ),
    ] = DEFAULT_SOURCE_TIMEZONE,
    refresh_window: Annotated[
        str,
        typer.Option(
            help="Re-read non-responses sent this long before the newest (0: off).",
            rich_help_panel=LIFECYCLE,
        ),
    ] = format_duration(DEFAULT_REFRESH_WINDOW),
    v6_lookback: Annotated[
        str,
        typer.Option(help="How far back each periodic v6 walk starts.", rich_help_panel=LIFECYCLE),
    ] = format_duration(DEFAULT_V6_LOOKBACK),
    full_refresh: Annotated[
        bool,
        typer.Option(help="Forget the stored cursors and reload.", rich_help_panel=LIFECYCLE),
    ] = False,
    reconcile: Annotated[
        bool,
        typer.Option(
            "--reconcile",
            help="Walk everything again, then delete what the API no longer lists (erased).",
            rich_help_panel=LIFECYCLE,
        ),
    ] = False,
    new_client_id: Annotated[
        bool,
        typer.Option(
            "--new-client-id",
            help="Move the lake to this client id of the system it mirrors (rotated credentials).",
            rich_help_panel=LIFECYCLE,
        ),
    ] = False,
    checkpoint_pages: Annotated[
        int,
        typer.Option(help="Pages per resource per checkpoint.", rich_help_panel=CHECKPOINTS),
    ] = DEFAULT_CHECKPOINT_PAGES,
    checkpoint_seconds: Annotated[
        float,
        typer.Option(
            help="Seconds after which a checkpoint ends too (0: by pages only).",
            rich_help_panel=CHECKPOINTS,
        ),
    ] = DEFAULT_CHECKPOINT_SECONDS,
    parallel: Annotated[
        int,
        typer.Option(
            help="Windows walked side by side in an initial load or full refresh (v7).",
            rich_help_panel=CHECKPOINTS,
        ),
    ] = DEFAULT_PARALLEL,
    destination: Destination = DEFAULT_DESTINATION,
    dataset: Dataset = DEFAULT_DATASET,
    table_format: Annotated[
        str,
        typer.Option(
            help="Table format on --destination filesystem: delta, or iceberg (pyiceberg; the "
            "catalog in dlt's config, see docs/sync.md).",
            rich_help_panel=LAKE,
        ),
    ] = DEFAULT_TABLE_FORMAT,
    pipeline_name: PipelineName = DEFAULT_PIPELINE_NAME,
    pipelines_dir: PipelinesDir = None,
    json_output: JsonOutput = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", help="No progress, no table (for cron).", rich_help_panel=OUTPUT),
    ] = False,
    log_format: Annotated[
        str,
        typer.Option(
            help="human (progress and a table), or json: one JSON object a line on stderr, "
            "for log aggregators (events in docs/sync.md).",
            rich_help_panel=OUTPUT,
        ),
    ] = DEFAULT_LOG_FORMAT,
) -> None:
    """Sync CustomerGauge responses and non-responses into the lake (initial or periodic)."""
    from cgsync import Lake, SyncOptions, run_sync
    from cgsync._tuning import tune_sync_process
    from cgsync._walks import Filters

    json_logs = _json_logs(log_format, quiet=quiet, secret=client_secret)
    with _exit_codes(json_errors=json_logs):
        tune_sync_process()
        options = SyncOptions(
            client_id=client_id,
            client_secret=client_secret,
            region=region,
            auth_url=auth_url,
            api_url=api_url,
            endpoints=tuple(endpoints.split(",")),
            expansions=_split(with_),
            per_page=per_page,
            filters=Filters(
                period_field=period_field,
                since=_parse_date(since, "--since"),
                until=_parse_date(until, "--until"),
                cgid=cgid,
                outbound_filter=outbound_filter,
            ),
            source_timezone=source_timezone,
            refresh_window=parse_duration(refresh_window, "--refresh-window"),
            v6_lookback=parse_duration(v6_lookback, "--v6-lookback"),
            checkpoint_pages=checkpoint_pages,
            checkpoint_seconds=checkpoint_seconds or None,
            full_refresh=full_refresh,
            parallel=parallel,
            reconcile=reconcile,
            new_client_id=new_client_id,
            lake=Lake(
                destination,
                dataset,
                pipeline_name,
                pipelines_dir,
                table_format=cast("TableFormat", table_format),  # Lake checks it
            ),
        )
        if json_logs:
            summary = run_sync(options)  # its events are the progress
        else:
            summary = _run_with_progress(options, show=not quiet)
        _report(summary, json_output=json_output, quiet=quiet or json_logs)


def status_command(
    destination: Destination = DEFAULT_DESTINATION,
    dataset: Dataset = DEFAULT_DATASET,
    pipeline_name: PipelineName = DEFAULT_PIPELINE_NAME,
    pipelines_dir: Annotated[
        str | None, typer.Option(hidden=True, help="Ignored: status reads the lake itself.")
    ] = None,
    json_output: JsonOutput = False,
) -> None:
    """Show what the lake says of itself: its system, runs, cursors, rows (exit 6: never synced)."""
    from cgsync import Lake, read_status

    with _exit_codes():
        status = read_status(Lake(destination, dataset, pipeline_name))
        if json_output:
            typer.echo(json.dumps(status, default=_json_value))
            return
        _print_status(status)


def demo_command(
    records: Annotated[int, typer.Option(help="Invitations in the emulator.")] = DEMO_RECORDS,
    json_output: JsonOutput = False,
) -> None:
    """Sync a built-in emulator into ./cgsync-demo.duckdb (initial run, 6 hours, periodic run), then report."""
    from cgsync import Lake, SyncOptions
    from cgsync.emulator import EmulatorConfig, start_emulator

    with _exit_codes(), tempfile.TemporaryDirectory(prefix="cgsync-demo-") as pipelines_dir:
        Path(DEMO_DATABASE).unlink(missing_ok=True)
        config = EmulatorConfig(records=records)
        with start_emulator(config) as emulator:
            options = SyncOptions(
                client_id=emulator.client_id,
                client_secret=emulator.client_secret,
                auth_url=emulator.token_url,
                api_url=emulator.base_url,
                source_timezone=config.timezone,
                lake=Lake(
                    destination=DEMO_DATABASE,
                    pipeline_name=DEMO_PIPELINE,
                    pipelines_dir=pipelines_dir,
                ),
            )
            stderr.print(f"[bold]initial sync[/] of {emulator.base_url} into {DEMO_DATABASE}")
            initial = _run_with_progress(options, show=not json_output)
            emulator.clock.advance(DEMO_ADVANCE)
            stderr.print(f"[bold]periodic sync[/] after the clock moved {DEMO_ADVANCE} ahead")
            periodic = _run_with_progress(options, show=not json_output)
        from cgsync.report import build_report, write_report

        figures = build_report(duckdb_path=DEMO_DATABASE, timezone=config.timezone)
        report = write_report(figures, DEMO_REPORT)
        if json_output:
            summaries = {"initial": initial.to_dict(), "periodic": periodic.to_dict()}
            typer.echo(json.dumps({**summaries, "report": str(report)}))
        else:
            _print_summary(initial, title="initial sync")
            _print_summary(periodic, title="periodic sync")
            typer.echo(f"report: {report}")
    shutil.rmtree(pipelines_dir, ignore_errors=True)


def _parse_date(text: str | None, flag: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag} {text!r} is not a date: use yyyy-mm-dd") from None


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _json_logs(log_format: str, *, quiet: bool, secret: str | None) -> bool:
    """Whether the log is JSON lines; if so, set it up (before anything can log)."""
    if log_format not in LOG_FORMATS:
        typer.echo(f"error: unknown --log-format {log_format!r}: use human or json", err=True)
        raise typer.Exit(ConfigError.exit_code)
    if log_format == "human":
        return False
    from cgsync._logs import use_json_lines

    secrets = (secret, os.environ.get(ENV_CLIENT_SECRET), os.environ.get(_DLT_SECRET_VARIABLE))
    use_json_lines(level=logging.ERROR if quiet else logging.INFO, secrets=secrets)
    return True


@contextmanager
def _exit_codes(*, json_errors: bool = False) -> Iterator[None]:
    """One line on stderr and the documented exit code for every failure we know (a JSON
    `error` event with `json_errors`, where an unexpected failure is one too, exit 1)."""

    def fail(message: str, exit_code: int) -> typer.Exit:
        if json_errors:
            from cgsync._logs import log_event

            log_event("error", message, level=logging.ERROR, exit_code=exit_code)
        else:
            typer.echo(message, err=True)
        return typer.Exit(exit_code)

    with _sigint_remembered() as interrupted:
        try:
            yield
            if interrupted.is_set():
                # Ctrl-C landed where Python can only ignore it (a finaliser inside dlt's
                # connection pool): the run went on, but the user asked it to stop.
                raise KeyboardInterrupt
        except CGSyncError as exc:
            raise fail(f"error: {exc}", exc.exit_code) from None
        except KeyboardInterrupt:
            message = "interrupted: the last checkpoint is kept; run again to resume"
            raise fail(message, EXIT_INTERRUPTED) from None
        except Exception as exc:
            if not json_errors:
                raise  # a bug: the traceback is what a maintainer needs
            message = f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            raise fail(message, EXIT_INTERNAL) from None


@contextmanager
def _sigint_remembered() -> Iterator[threading.Event]:
    """Ctrl-C raises KeyboardInterrupt as usual and is also remembered in the event."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        interrupted.set()
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_with_progress(options: SyncOptions, *, show: bool) -> SyncSummary:
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    from cgsync import run_sync

    _configure_logging(quiet=not show)
    if not show:
        return run_sync(options)
    progress = Progress(
        TextColumn("{task.description:<14}"),
        TextColumn("{task.fields[pages]:>7,} pages"),
        TextColumn("{task.completed:>11,.0f} records"),
        TextColumn("{task.fields[rate]:>9,.0f} records/s"),
        TimeElapsedColumn(),
        console=stderr,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}
    started = time.monotonic()

    def on_page(resource: str, records: int) -> None:
        if not tasks:
            progress.start()  # on the first page: nothing is drawn if validation fails
        if resource not in tasks:
            tasks[resource] = progress.add_task(resource, total=None, pages=0, rate=0.0)
        task = progress.tasks[tasks[resource]]
        rate = (task.completed + records) / max(time.monotonic() - started, 1e-6)
        progress.update(task.id, advance=records, pages=task.fields["pages"] + 1, rate=rate)

    try:
        return run_sync(options, on_page=on_page)
    finally:
        if tasks:
            progress.stop()


def _configure_logging(*, quiet: bool) -> None:
    """Retries and other warnings of the sync on stderr (only errors with --quiet)."""
    logger = logging.getLogger("cgsync")
    logger.setLevel(logging.ERROR if quiet else logging.WARNING)
    if not any(isinstance(handler, RichHandler) for handler in logger.handlers):
        logger.addHandler(RichHandler(console=stderr, show_path=False))


def _report(summary: SyncSummary, *, json_output: bool, quiet: bool) -> None:
    if json_output:
        typer.echo(json.dumps(summary.to_dict(), default=str))
    elif not quiet:
        _print_summary(summary, title="sync")


def _print_summary(summary: SyncSummary, *, title: str) -> None:
    console = Console()
    table = Table(
        title=f"{title}: {summary.outcome} in {summary.seconds:.1f}s, {summary.checkpoints} checkpoint(s)"
    )
    columns = ("resource", "pages", "records", "records/s", "re-read", "rows in lake")
    for column in columns:
        table.add_column(column, justify="left" if column == "resource" else "right")
    for name, resource in summary.resources.items():
        table.add_row(
            name,
            f"{resource.pages:,}",
            f"{resource.records:,}",
            f"{resource.records_per_second:,.0f}",
            f"{resource.refresh_records:,} in {resource.refresh_pages:,} pages",
            f"{summary.row_counts.get(name, 0):,}",
        )
    console.print(table)
    if summary.reconcile:
        removed = ", ".join(f"{name} {r.removed:,}" for name, r in summary.resources.items())
        console.print(f"reconcile: records updated as listed; removed, no longer listed: {removed}")
    for note in summary.notes:
        console.print(f"note: {note}")
    retries = ", ".join(f"{kind} {count}" for kind, count in summary.retries.items()) or "none"
    console.print(
        f"API calls {summary.api_calls:,}, token calls {summary.token_calls}, retries: {retries}; "
        f"open non-responses: {_or_dash(summary.open_non_responses)}"
        + (
            f"; values not read (NULL, text in _cgsync_rejected_values): {summary.rejected_values:,}"
            if summary.rejected_values
            else ""
        )
    )


def _print_status(status: dict[str, Any]) -> None:
    console = Console()
    where = status["location"] or f"{status['destination']} dataset {status['dataset']}"
    system = status["system"]
    mirrors = f"{system['api_host']} (client id {system['client_id']})" if system else "-"
    console.print(f"lake [bold]{where}[/] mirrors {mirrors}")
    last, good = status["last_run"], status["last_success"]
    if last is None:
        console.print("last run: none recorded in the lake")
    else:
        error = f" ({last['error']})" if last.get("error") else ""
        console.print(
            f"last run: {last['finished_at']:%Y-%m-%d %H:%M:%S}Z {last['outcome']}{error}"
        )
    if good is not None and good is not last:
        console.print(f"last good run: {good['finished_at']:%Y-%m-%d %H:%M:%S}Z")
    if status["last_reconcile"] is not None:
        reconciled = status["last_reconcile"]
        console.print(
            f"last reconcile: {reconciled['finished_at']:%Y-%m-%d %H:%M:%S}Z {reconciled['outcome']}"
        )
    if status["last_success_age_seconds"] is not None:
        console.print(f"last good run ended {_age(status['last_success_age_seconds'])} ago")
    runs = Table(title="recent runs")
    for column in ("started (UTC)", "outcome", "seconds", "records", "API calls", "machine"):
        runs.add_column(column, justify="right" if column in ("seconds", "records") else "left")
    for run in status["recent_runs"]:
        records = sum((counts or {}).get("records") or 0 for counts in run["resources"].values())
        runs.add_row(
            f"{run['started_at']:%Y-%m-%d %H:%M:%S}",
            run["outcome"],
            f"{run['seconds']:.1f}",
            f"{records:,}",
            f"{run['api_calls']:,}",
            run["machine"] or "-",
        )
    console.print(runs)
    cursors = Table(title="stored cursors")
    for column in ("resource", "walk", "cursor", "complete"):
        cursors.add_column(column)
    for resource, walks in status["cursors"].items():
        for key, walk in walks.items():
            cursors.add_row(resource, key, str(walk["cursor"]), "yes" if walk["complete"] else "no")
    console.print(cursors)
    counts = Table(title="rows")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    for name, count in status["row_counts"].items():
        counts.add_row(name, f"{count:,}")
    console.print(counts)
    console.print(f"open non-responses: {_or_dash(status['open_non_responses'])}")
    if status["rejected_values"]:
        console.print(
            f"values not read (NULL, text in _cgsync_rejected_values): {status['rejected_values']:,}"
        )


def _age(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {int(seconds) % 60:02d}s"


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _or_dash(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
