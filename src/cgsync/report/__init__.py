"""The HTML NPS report: figures aggregated from the lake, rendered into one offline page.

Usage: `write_report(build_report(duckdb_path="cgsync.duckdb"), "report.html")`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from cgsync._exceptions import ConfigError
from cgsync._lazy import lazy_attributes
from cgsync.report import settings

if TYPE_CHECKING:
    from cgsync.report._html import render_html
    from cgsync.report._models import (
        DetractorComment,
        Driver,
        Funnel,
        Headline,
        MonthRate,
        NpsScore,
        PeriodScore,
        ReportFigures,
        Segment,
        SegmentFilter,
        SegmentValue,
        Topic,
        Topics,
    )

__all__ = [
    "DetractorComment",
    "Driver",
    "Funnel",
    "Headline",
    "MonthRate",
    "NpsScore",
    "PeriodScore",
    "ReportFigures",
    "Segment",
    "SegmentFilter",
    "SegmentValue",
    "Topic",
    "Topics",
    "build_report",
    "render_html",
    "write_report",
]

# Imported on first use: the lake's reader imports dlt and DuckDB, the page plotly, and the CLI
# imports this package at start-up, which must stay quick.
_HOMES = {
    "render_html": "cgsync.report._html",
    "DetractorComment": "cgsync.report._models",
    "Funnel": "cgsync.report._models",
    "Headline": "cgsync.report._models",
    "NpsScore": "cgsync.report._models",
    "PeriodScore": "cgsync.report._models",
    "ReportFigures": "cgsync.report._models",
    "Segment": "cgsync.report._models",
    "SegmentValue": "cgsync.report._models",
    "Driver": "cgsync.report._models",
    "MonthRate": "cgsync.report._models",
    "SegmentFilter": "cgsync.report._models",
    "Topic": "cgsync.report._models",
    "Topics": "cgsync.report._models",
}


__getattr__ = lazy_attributes(__name__, _HOMES)


def build_report(
    *,
    destination: str = settings.DEFAULT_DESTINATION,
    dataset_name: str = settings.DEFAULT_DATASET,
    duckdb_path: str | Path | None = None,
    pipeline_name: str = settings.DEFAULT_PIPELINE_NAME,
    since: date | None = None,
    until: date | None = None,
    segment: str | None = None,
    segment_filters: Sequence[tuple[str, str]] = (),
    timezone: str = "UTC",
) -> ReportFigures:
    """Read the lake and compute the report's figures; raises `ConfigError` on a bad lake.

    Like `cgsync sync`, the DuckDB lake is `./<pipeline_name>.duckdb` unless `duckdb_path` says.
    `segment` shows only that field's NPS by segment; `segment_filters` keeps only the records
    whose field holds the value, for every figure: `[("Touchpoint", "Support")]`.
    """
    from cgsync.report._figures import compute_figures
    from cgsync.report._lake import open_lake

    path = Path(duckdb_path if duckdb_path is not None else f"{pipeline_name}.duckdb")
    with open_lake(destination, dataset_name, path) as lake:
        return compute_figures(
            lake,
            since=since,
            until=until,
            segment=segment,
            segment_filters=segment_filters,
            timezone=timezone,
        )


def write_report(figures: ReportFigures, out_path: str | Path) -> Path:
    """Write the self-contained HTML page and return its absolute path."""
    from cgsync.report._html import render_html

    path = Path(out_path).resolve()
    try:
        path.write_text(render_html(figures), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {path}: {exc.strerror}") from None
    return path
