"""`cgsync sync`, `cgsync status` and `cgsync demo`.

Progress and errors go to stderr; stdout carries only the summary (a table, or JSON with
`--json`), so that cron mails and scripts stay clean. Exit codes: 0 done, 2 bad usage or
configuration (also another system than the lake mirrors), 3 authentication refused, 4 API or
data error, 5 locked (another sync of the lake is running), 6 `status` of a lake never synced,
130 interrupted.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from cgsync._console import (
    exit_codes,
    json_value,
    print_outcome,
    print_status,
    print_summary,
    run_with_progress,
    stderr,
    use_json_logs,
)
from cgsync._exceptions import ConfigError
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
    REGIONS,
)

# Imported where they are used, when a command runs: the sync's modules import dlt, DuckDB and
# Arrow (about a second), which `cgsync --help` and the other commands must not pay for.
if TYPE_CHECKING:
    from cgsync._lake import TableFormat

DEMO_DATABASE = "cgsync-demo.duckdb"
DEMO_PIPELINE = "cgsync_demo"
DEMO_RECORDS = 20_000
DEMO_ADVANCE = timedelta(hours=6)
DEMO_REPORT = "cgsync-demo-report.html"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 3600}


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

    json_logs = use_json_logs(log_format, quiet=quiet, secret=client_secret)
    with exit_codes(json_errors=json_logs):
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
            summary = run_with_progress(options, show=not quiet)
        print_outcome(summary, json_output=json_output, quiet=quiet or json_logs)


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

    with exit_codes():
        status = read_status(Lake(destination, dataset, pipeline_name))
        if json_output:
            typer.echo(json.dumps(status, default=json_value))
            return
        print_status(status)


def demo_command(
    records: Annotated[int, typer.Option(help="Invitations in the emulator.")] = DEMO_RECORDS,
    json_output: JsonOutput = False,
) -> None:
    """Sync a built-in emulator into ./cgsync-demo.duckdb (initial run, 6 hours, periodic run), then report."""
    from cgsync import Lake, SyncOptions
    from cgsync.emulator import EmulatorConfig, start_emulator

    with exit_codes(), tempfile.TemporaryDirectory(prefix="cgsync-demo-") as pipelines_dir:
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
            initial = run_with_progress(options, show=not json_output)
            emulator.clock.advance(DEMO_ADVANCE)
            stderr.print(f"[bold]periodic sync[/] after the clock moved {DEMO_ADVANCE} ahead")
            periodic = run_with_progress(options, show=not json_output)
        from cgsync.report import build_report, write_report

        figures = build_report(duckdb_path=DEMO_DATABASE, timezone=config.timezone)
        report = write_report(figures, DEMO_REPORT)
        if json_output:
            summaries = {"initial": initial.to_dict(), "periodic": periodic.to_dict()}
            highlights = figures.to_dict()["highlights"]
            typer.echo(json.dumps({**summaries, "report": str(report), "highlights": highlights}))
        else:
            print_summary(initial, title="initial sync")
            print_summary(periodic, title="periodic sync")
            for line in figures.highlight_lines():
                typer.echo(line)
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
