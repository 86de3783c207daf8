"""The fixed lake on other dlt destinations gives the figures DuckDB gives (test_figures.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from typer.testing import CliRunner

from cgsync.cli import app
from cgsync.report import ReportFigures, build_report

PERIOD = {"since": date(2026, 1, 5), "until": date(2026, 1, 31)}


def _same_figures(left: ReportFigures, right: ReportFigures) -> bool:
    unrelated = {"source": None, "generated_at": None}
    return {**left.to_dict(), **unrelated} == {**right.to_dict(), **unrelated}


@pytest.mark.postgres
def test_postgres(postgres_lake: str, lake_path: Path) -> None:
    figures = build_report(destination="postgres", dataset_name=postgres_lake, **PERIOD)
    assert figures.headline.score.nps == -10
    assert figures.source == f"postgres, dataset {postgres_lake}"
    assert [p.score.nps for p in figures.over_time] == [0, -100, pytest.approx(100 / 3), None]
    assert [d.name for d in figures.drivers] == ["Ease of use", "Delivery", "Price"]
    assert figures.topics.detractors and figures.response_rate_by_month
    assert _same_figures(figures, build_report(duckdb_path=lake_path, **PERIOD))


@pytest.mark.postgres
def test_postgres_with_segment_filters(postgres_lake: str, lake_path: Path) -> None:
    options = {**PERIOD, "segment_filters": [("Country", "NL"), ("Division", "Retail")]}
    figures = build_report(destination="postgres", dataset_name=postgres_lake, **options)
    assert figures.headline.score.responses == 3
    assert _same_figures(figures, build_report(duckdb_path=lake_path, **options))


@pytest.mark.postgres
def test_postgres_days_in_a_time_zone(postgres_lake: str, lake_path: Path) -> None:
    # UTC+14: responses after 10:00 UTC fall on the next day there
    options = {**PERIOD, "timezone": "Pacific/Kiritimati"}
    figures = build_report(destination="postgres", dataset_name=postgres_lake, **options)
    assert _same_figures(figures, build_report(duckdb_path=lake_path, **options))


@pytest.mark.postgres
def test_refused_credentials_are_one_line_without_the_password(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = urlsplit(postgres_dsn)
    wrong = parts._replace(
        netloc=f"{parts.username}:not-the-password-4711@{parts.hostname}:{parts.port}"
    )
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", urlunsplit(wrong))
    result = CliRunner().invoke(app, ["report", "--destination", "postgres"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot open the lake on postgres: ")
    assert result.stderr.count("\n") == 1
    assert "not-the-password-4711" not in result.output


def test_files_without_views_get_the_funnel_from_the_tables(
    files_lake: str, lake_path: Path
) -> None:
    figures = build_report(destination="filesystem", dataset_name=files_lake, **PERIOD)
    assert (figures.funnel.sent, figures.funnel.failed) == (14, 2)  # 1 was sent on 4 Jan
    assert [d.name for d in figures.drivers] == ["Ease of use", "Delivery", "Price"]
    assert _same_figures(figures, build_report(duckdb_path=lake_path, **PERIOD))
