"""`cgsync report`: write the HTML NPS report, or print its figures as JSON."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from cgsync._exceptions import CGSyncError, ConfigError
from cgsync.report import build_report, settings, write_report


def report_command(
    out: Annotated[Path, typer.Option(help="Where to write the HTML page.")] = Path(
        settings.DEFAULT_OUT
    ),
    since: Annotated[str | None, typer.Option(help="First day of the period, yyyy-mm-dd.")] = None,
    until: Annotated[
        str | None, typer.Option(help="Last day of the period, yyyy-mm-dd, included.")
    ] = None,
    timezone: Annotated[
        str,
        typer.Option(
            help="IANA time zone of days, weeks and months: the sync's --source-timezone."
        ),
    ] = "UTC",
    segment: Annotated[
        list[str] | None,
        typer.Option(
            help="FIELD=VALUE keeps only those records, for every figure (repeatable: values of"
            " one field are alternatives, fields must all match); a bare FIELD shows only that"
            " field's NPS by segment. E.g. Touchpoint=Support, Country."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the figures as JSON instead of writing the page.")
    ] = False,
    destination: Annotated[
        str, typer.Option(help="dlt destination holding the lake.")
    ] = settings.DEFAULT_DESTINATION,
    dataset: Annotated[str, typer.Option(help="Dataset (schema) of the lake.")] = (
        settings.DEFAULT_DATASET
    ),
    pipeline_name: Annotated[
        str, typer.Option(help="The sync's pipeline name; names the DuckDB lake by default.")
    ] = settings.DEFAULT_PIPELINE_NAME,
    duckdb_path: Annotated[
        Path | None,
        typer.Option(help="The lake's DuckDB file.  [default: ./<pipeline-name>.duckdb]"),
    ] = None,
) -> None:
    """Build a self-contained HTML NPS report from the synced lake."""
    try:
        only_field, segment_filters = _parse_segments(segment or [])
        figures = build_report(
            destination=destination,
            dataset_name=dataset,
            duckdb_path=duckdb_path,
            pipeline_name=pipeline_name,
            since=_parse_day("--since", since),
            until=_parse_day("--until", until),
            segment=only_field,
            segment_filters=segment_filters,
            timezone=timezone,
        )
        if as_json:
            typer.echo(json.dumps(figures.to_dict(), indent=2, ensure_ascii=False))
        else:
            typer.echo(write_report(figures, out))
    except CGSyncError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None


def _parse_day(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a date: use yyyy-mm-dd") from None


def _parse_segments(options: list[str]) -> tuple[str | None, list[tuple[str, str]]]:
    """`--segment` values: at most one bare FIELD, and the FIELD=VALUE filters."""
    fields = [text for text in options if "=" not in text]
    if len(fields) > 1:
        raise ConfigError(
            f"--segment {fields[1]!r}: give one bare FIELD to show, or filter with FIELD=VALUE"
        )
    filters = []
    for text in options:
        if "=" in text:
            field, _, value = text.partition("=")
            if not field.strip():
                raise ConfigError(f"--segment {text!r} names no field: use FIELD=VALUE")
            filters.append((field.strip(), value))
    return (fields[0] if fields else None), filters
