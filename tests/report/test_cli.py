"""`cgsync report` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from cgsync.cli import app

runner = CliRunner()


def test_writes_the_page_and_prints_its_path(lake_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "nps.html"
    result = runner.invoke(app, ["report", "--duckdb-path", str(lake_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out.resolve())
    assert "<h1>CustomerGauge NPS report</h1>" in out.read_text()


def test_the_lake_is_only_read(lake_path: Path, tmp_path: Path) -> None:
    before = lake_path.read_bytes()
    result = runner.invoke(
        app, ["report", "--duckdb-path", str(lake_path), "--out", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 0, result.output
    assert lake_path.read_bytes() == before


def test_the_lake_is_named_after_the_pipeline_like_the_sync_does(
    lake_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(lake_path.parent)  # holds cgsync.duckdb
    assert runner.invoke(app, ["report", "--json"]).exit_code == 0
    result = runner.invoke(app, ["report", "--pipeline-name", "crm"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no lake at crm.duckdb: run `cgsync sync` first or pass --duckdb-path\n"
    )


def test_json_prints_the_figures_for_the_period(lake_path: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "report",
            "--duckdb-path",
            str(lake_path),
            "--json",
            "--since",
            "2026-01-12",
            "--until",
            "2026-01-18",
            "--segment",
            "Country",
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert (figures["since"], figures["until"]) == ("2026-01-12", "2026-01-18")
    assert figures["headline"]["nps"] == -100  # 6 and 7, both detractors
    assert [s["name"] for s in figures["segments"]] == ["country"]
    assert not list(tmp_path.glob("*.html"))


def test_json_carries_drivers_topics_rates_and_the_filters_that_made_it(
    lake_path: Path,
) -> None:
    result = runner.invoke(
        app,
        ["report", "--duckdb-path", str(lake_path), "--json", "--segment", "Country=NL",
         "--segment", "Country=GB", "--segment", "Division"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["filters"] == [
        {"column": "properties__country", "name": "country", "values": ["NL", "GB"]}
    ]
    assert [s["name"] for s in figures["segments"]] == ["division"]
    # NL and GB: 1, 2, 8, 9 promote; 4, 7, 10 detract
    assert figures["headline"]["responses"] == 7
    assert figures["drivers"][0] == {
        "name": "Ease of use",
        "mentions": 4,  # 1, 2, 7, 8
        "positive_share": 0.75,
        "negative_share": 0.0,
        "nps": 50.0,
        "nps_difference": pytest.approx(50 + 100 / 3),  # the other three: 9; 4, 10: -33
        "too_few": True,
    }
    assert figures["topics"]["detractors"][0] == {"tag": "Billing", "responses": 2, "share": 2 / 3}
    assert figures["response_rate_by_month"] == [
        {
            "month": "2026-01",
            "invitations": 9,  # 1, 2, 4, 7, 8, 9, 10, 11, 15
            "responses": 7,
            "response_rate": 7 / 9,
            "median_hours_to_answer": 24.0,
            "too_few": True,
        }
    ]
    assert figures["highlights"] == {"lowest_period": None, "worst_segment": None}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "12/01/2026"], "error: --since '12/01/2026' is not a date: use yyyy-mm-dd"),
        (["--until", "2026-02-30"], "error: --until '2026-02-30' is not a date: use yyyy-mm-dd"),
        (
            ["--segment", "Region"],
            "error: unknown --segment 'Region'; the lake has: country, division",
        ),
        (
            ["--segment", "Region=North"],
            "error: unknown --segment 'Region'; the lake has: country, division",
        ),
        (
            ["--segment", "Country", "--segment", "Division"],
            "error: --segment 'Division': give one bare FIELD to show, or filter with FIELD=VALUE",
        ),
        (["--segment", "=NL"], "error: --segment '=NL' names no field: use FIELD=VALUE"),
        (
            ["--timezone", "Mars/Olympus"],
            "error: unknown --timezone 'Mars/Olympus': use an IANA name such as Europe/Amsterdam",
        ),
        (
            ["--destination", "nosuch"],
            (
                "error: unknown --destination 'nosuch': "
                "use a dlt destination such as duckdb, postgres or filesystem"
            ),
        ),
        (
            ["--dataset", "crm"],
            (
                "error: the lake has no dataset 'crm': "
                "run `cgsync sync` first or pass the right --dataset"
            ),
        ),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_2(
    lake_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["report", "--duckdb-path", str(lake_path), *args])
    assert result.exit_code == 2
    assert result.stderr == message + "\n"
    assert result.stdout == ""


def test_a_missing_lake_is_one_line_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "cgsync.duckdb"
    result = runner.invoke(app, ["report", "--duckdb-path", str(missing)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: no lake at {missing}: run `cgsync sync` first or pass --duckdb-path\n"
    )
    assert not missing.exists()


def test_an_empty_lake_is_one_line(make_lake) -> None:
    result = runner.invoke(app, ["report", "--duckdb-path", str(make_lake([], []))])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: the lake holds no responses or invitations yet: run `cgsync sync`\n"
    )


def test_a_lake_without_the_tables_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA customergauge")
    result = runner.invoke(app, ["report", "--duckdb-path", str(path)])
    assert result.exit_code == 2
    assert result.stderr == ("error: the lake has no responses table: run `cgsync sync` first\n")
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE customergauge.responses (number_customergauge BIGINT)")
    result = runner.invoke(app, ["report", "--duckdb-path", str(path)])
    assert result.stderr == (
        "error: the lake has no survey_funnel view or non_responses table: "
        "run `cgsync sync` first\n"
    )


def test_a_file_that_is_no_duckdb_lake_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cgsync.duckdb"
    path.write_text("not a database")
    result = runner.invoke(app, ["report", "--duckdb-path", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot open the lake on duckdb: ")
    assert result.stderr.count("\n") == 1


def test_a_lake_held_by_a_writer_is_one_line_naming_the_cause(lake_path: Path) -> None:
    with duckdb.connect(str(lake_path)):  # as a running sync would
        result = runner.invoke(app, ["report", "--duckdb-path", str(lake_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot open the lake on duckdb: Connection Error: ")
    assert result.stderr.count("\n") == 1


def test_an_unwritable_out_path_is_one_line(lake_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "missing-dir" / "report.html"
    result = runner.invoke(app, ["report", "--duckdb-path", str(lake_path), "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: cannot write the report to {out}: No such file or directory\n"
    )
