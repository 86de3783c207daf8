"""What `cgsync sync`, `status` and `demo` show people: progress and tables, and for every
failure one line on stderr with its documented exit code (exit codes: see `_sync_cli`).

Light to import, as the command modules are: what runs a sync is imported when it runs.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from cgsync._exceptions import EXIT_INTERRUPTED, CGSyncError, ConfigError
from cgsync.settings import ENV_CLIENT_SECRET, LOG_FORMATS

if TYPE_CHECKING:
    from rich.progress import TaskID

    from cgsync._config import SyncOptions
    from cgsync._summary import SyncSummary

EXIT_INTERNAL = 1
_DLT_SECRET_VARIABLE = "SOURCES__CUSTOMERGAUGE__CLIENT_SECRET"

stderr = Console(stderr=True)


def use_json_logs(log_format: str, *, quiet: bool, secret: str | None) -> bool:
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
def exit_codes(*, json_errors: bool = False) -> Iterator[None]:
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


def run_with_progress(options: SyncOptions, *, show: bool) -> SyncSummary:
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


def print_outcome(summary: SyncSummary, *, json_output: bool, quiet: bool) -> None:
    """The summary on stdout: JSON with `json_output`, else the table unless `quiet`."""
    if json_output:
        typer.echo(json.dumps(summary.to_dict(), default=str))
    elif not quiet:
        print_summary(summary, title="sync")


def print_summary(summary: SyncSummary, *, title: str) -> None:
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


def print_status(status: dict[str, Any]) -> None:
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


def json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _or_dash(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
