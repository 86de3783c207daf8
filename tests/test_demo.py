"""`cgsync demo`: two syncs of the emulator into the demo lake, then its report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from cgsync.cli import app
from cgsync.emulator import EmulatorConfig


@dataclass(frozen=True)
class Demo:
    directory: Path
    output: dict[str, Any]

    def query(self, sql: str) -> Any:
        with duckdb.connect(str(self.directory / "cgsync-demo.duckdb"), read_only=True) as lake:
            lake.execute("SET schema = 'customergauge'")
            return lake.execute(sql).fetchone()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """One `cgsync demo` run for the tests of this module (it syncs twice and writes a report)."""
    directory = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(directory)
        result = CliRunner().invoke(app, ["demo", "--json"])  # the default 20,000 records
    assert result.exit_code == 0, result.output
    yield Demo(directory, json.loads(result.stdout))


def test_demo_syncs_the_emulator_twice_into_the_demo_database(demo: Demo) -> None:
    summaries = demo.output
    assert summaries["initial"]["row_counts"]["responses"] > 0
    assert summaries["periodic"]["outcome"] == "ok"
    assert summaries["periodic"]["resources"]["responses"]["pages"] >= 1
    (funnel,) = demo.query("SELECT COUNT(*) FROM survey_funnel")
    (cgids,) = demo.query(
        "SELECT COUNT(*) FROM (SELECT number_customergauge FROM non_responses"
        " UNION SELECT number_customergauge FROM responses)"
    )
    assert funnel == cgids > 0


def test_demo_writes_the_report_of_the_demo_lake(demo: Demo) -> None:
    report = Path(demo.output["report"])
    assert report == demo.directory / "cgsync-demo-report.html"
    page = report.read_text(encoding="utf-8")
    (responses,) = demo.query("SELECT COUNT(*) FROM responses")
    assert responses > 0
    assert "Plotly.newPlot" in page
    assert f">{responses:,}<" in page or f">{responses}<" in page


def test_demo_shows_the_incident_month_and_the_worst_segment(demo: Demo) -> None:
    highlights = demo.output["highlights"]
    assert highlights["lowest_period"]["start"] == EmulatorConfig().incident_month.isoformat()
    assert (highlights["worst_segment"]["name"], highlights["worst_segment"]["value"]) == (
        "touchpoint",
        "Support",
    )
    page = Path(demo.output["report"]).read_text(encoding="utf-8")
    month = EmulatorConfig().incident_month.strftime("%b %Y")
    assert f"Lowest month</span> <strong>{month}</strong>" in page
    assert "Worst segment</span> <strong>Touchpoint = Support</strong>" in page


def test_demo_prints_them_beside_the_summaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    month = EmulatorConfig().incident_month.strftime("%B %Y")
    assert any(line.startswith(f"lowest month: {month}, NPS -") for line in lines)
    assert any(line.startswith("worst segment: touchpoint = Support, NPS ") for line in lines)
