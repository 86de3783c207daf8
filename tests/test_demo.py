"""`cgsync demo` ends with the report of the demo lake."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from cgsync.cli import app


def test_demo_writes_the_report_of_the_demo_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo", "--records", "2000", "--json"])
    assert result.exit_code == 0, result.output

    report = Path(json.loads(result.stdout)["report"])
    assert report == tmp_path / "cgsync-demo-report.html"
    page = report.read_text(encoding="utf-8")
    with duckdb.connect(str(tmp_path / "cgsync-demo.duckdb"), read_only=True) as lake:
        (responses,) = lake.execute("SELECT COUNT(*) FROM customergauge.responses").fetchone()
    assert responses > 0
    assert "Plotly.newPlot" in page
    assert f">{responses:,}<" in page or f">{responses}<" in page
