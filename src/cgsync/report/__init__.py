"""The HTML NPS report: figures aggregated from the lake, rendered into one offline page.

Usage: `write_report(build_report(duckdb_path="cgsync.duckdb"), "report.html")`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from cgsync._exceptions import ConfigError
from cgsync.report import settings
from cgsync.report._figures import compute_figures
from cgsync.report._html import render_html
from cgsync.report._lake import open_lake
from cgsync.report._models import (
    DetractorComment,
    Funnel,
    Headline,
    NpsScore,
    PeriodScore,
    ReportFigures,
    Segment,
    SegmentValue,
)

__all__ = [
    "DetractorComment",
    "Funnel",
    "Headline",
    "NpsScore",
    "PeriodScore",
    "ReportFigures",
    "Segment",
    "SegmentValue",
    "build_report",
    "render_html",
    "write_report",
]


def build_report(
    *,
    destination: str = settings.DEFAULT_DESTINATION,
    dataset_name: str = settings.DEFAULT_DATASET,
    duckdb_path: str | Path | None = None,
    pipeline_name: str = settings.DEFAULT_PIPELINE_NAME,
    since: date | None = None,
    until: date | None = None,
    segment: str | None = None,
    timezone: str = "UTC",
) -> ReportFigures:
    """Read the lake and compute the report's figures; raises `ConfigError` on a bad lake.

    Like `cgsync sync`, the DuckDB lake is `./<pipeline_name>.duckdb` unless `duckdb_path` says.
    """
    path = Path(duckdb_path if duckdb_path is not None else f"{pipeline_name}.duckdb")
    with open_lake(destination, dataset_name, path) as lake:
        return compute_figures(lake, since=since, until=until, segment=segment, timezone=timezone)


def write_report(figures: ReportFigures, out_path: str | Path) -> Path:
    """Write the self-contained HTML page and return its absolute path."""
    path = Path(out_path).resolve()
    try:
        path.write_text(render_html(figures), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {path}: {exc.strerror}") from None
    return path
