"""`cgsync sync`, `cgsync status` and `cgsync demo` as a user runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import dlt
import duckdb
import pytest
import typer
from dlt.common.versioned_state import decompress_state
from machines import connect
from sync_lake import LakeReader, assert_exact
from timing import hold_request, paused
from typer.testing import CliRunner, Result

from cgsync import Lake, _reconcile, _runner, _tuning, settings
from cgsync._lake import build_pipeline, local_lock
from cgsync._lake_sql import lake_counts
from cgsync._reconcile import stale_keys
from cgsync._sync_cli import format_duration, parse_duration
from cgsync.cli import app
from cgsync.emulator import Emulator
from cgsync.settings import ENV_DUCKDB_GLOBAL_CONFIG

SECRET = "pssst-4b1d-do-not-leak"


@pytest.fixture
def cgsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Runs `cgsync <args>` in a clean environment, its lake and pipelines in tmp_path."""
    for name in ("CLIENT_ID", "CLIENT_SECRET", "REGION", "AUTH_URL", "API_URL"):
        monkeypatch.delenv(f"CUSTOMERGAUGE_{name}", raising=False)
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "lake.duckdb"))
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, [*args, "--pipelines-dir", str(tmp_path / "pipelines")], env=env)

    return run


def test_sync_prints_a_json_summary_and_status_shows_the_cursors(
    cgsync: Callable[..., Result], emulator: Callable[..., Emulator]
) -> None:
    emu = emulator(records=1_500)
    synced = cgsync("sync", "--json", env=connect(emu))
    assert synced.exit_code == 0, synced.output
    summary = json.loads(synced.stdout)
    truth = emu.truth()
    assert summary["outcome"] == "ok"
    assert summary["resources"]["responses"]["records"] == len(truth.responses)
    assert summary["row_counts"]["responses"] == len(truth.responses)
    assert summary["open_non_responses"] == len(truth.non_responses)
    assert summary["token_calls"] == 1

    shown = cgsync("status", "--json")
    assert shown.exit_code == 0, shown.output
    status = json.loads(shown.stdout)
    assert status["cursors"]["responses"]["all"] == {
        "cursor": len(truth.responses),
        "complete": True,
        "ladder_rungs": 1,  # one page of responses: where a refused refresh would re-read
    }
    assert status["last_run"]["outcome"] == "ok"
    assert status["open_non_responses"] == len(truth.non_responses)


def test_credentials_can_come_from_dlt_secrets(
    cgsync: Callable[..., Result], emulator: Callable[..., Emulator]
) -> None:
    emu = emulator(records=300)
    env = connect(emu, CUSTOMERGAUGE_CLIENT_ID="", CUSTOMERGAUGE_CLIENT_SECRET="")
    env["SOURCES__CUSTOMERGAUGE__CLIENT_ID"] = emu.client_id
    env["SOURCES__CUSTOMERGAUGE__CLIENT_SECRET"] = emu.client_secret

    result = cgsync("sync", "--json", env=env)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["row_counts"]["responses"] == len(emu.truth().responses)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {"CUSTOMERGAUGE_CLIENT_ID": ""}, "missing credentials: set CUSTOMERGAUGE_CLIENT_ID"),
        (
            (),
            {"CUSTOMERGAUGE_REGION": "mars", "CUSTOMERGAUGE_AUTH_URL": ""},
            "unknown region 'mars'",
        ),
        (("--per-page", "1001"), {}, "per_page 1001 is out of range for responses: use 1 to 1000"),
        (("--source-timezone", "Europe/Atlantis"), {}, "unknown time zone 'Europe/Atlantis'"),
        (
            ("--since", "2024-02-30", "--until", "2024-03-01"),
            {},
            "--since '2024-02-30' is not a date",
        ),
        (("--endpoints", "responses,answers"), {}, "unknown resource 'answers'"),
        (("--refresh-window", "3 weeks"), {}, "--refresh-window '3 weeks' is not a duration"),
        (("--with", "gossip"), {}, "--with gossip is not available"),
    ],
)
def test_bad_input_exits_2_with_one_line_before_any_call(
    cgsync: Callable[..., Result],
    emulator: Callable[..., Emulator],
    args: tuple[str, ...],
    env: dict[str, str],
    message: str,
) -> None:
    emu = emulator(records=10)
    result = cgsync("sync", *args, env=connect(emu, **env))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {message}")
    assert result.stderr.count("\n") == 1
    assert emu.stats()["api_calls"] == 0
    assert emu.stats()["token_calls"] == 0


def test_wrong_credentials_exit_3_naming_the_client_id_never_the_secret(
    cgsync: Callable[..., Result], emulator: Callable[..., Emulator]
) -> None:
    emu = emulator(records=10)
    result = cgsync("sync", env=connect(emu, CUSTOMERGAUGE_CLIENT_SECRET=SECRET))
    assert result.exit_code == 3
    assert emu.client_id in result.stderr
    assert SECRET not in result.output + result.stderr


def test_a_second_sync_of_the_same_pipeline_exits_5_and_changes_nothing(
    cgsync: Callable[..., Result], emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = emulator(records=300)
    lake = Lake(str(tmp_path / "lake.duckdb"), pipelines_dir=str(tmp_path / "pipelines"))
    with local_lock(build_pipeline(lake)):
        result = cgsync("sync", env=connect(emu))
    assert result.exit_code == 5
    assert "another sync of this lake is running on this machine" in result.stderr
    assert not (tmp_path / "lake.duckdb").exists()
    assert emu.stats()["api_calls"] == 0


def test_a_sync_running_in_another_process_holds_the_lock(
    cgsync: Callable[..., Result], emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = emulator(records=1_500)
    command = [sys.executable, "-m", "cgsync", "sync", "--quiet", "--per-page", "100"]
    command += ["--pipelines-dir", str(tmp_path / "pipelines")]
    env = {**os.environ, **connect(emu)}
    # The lock comes before the first data request: while it is held, the running sync holds
    # the lock and cannot end; stopped, it stays so while the second one tries.
    with hold_request(emu) as held:
        running = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
        assert held.wait_reached(running), "the first sync ended before its first request"
        with paused(running):
            held.release()
            second = cgsync("sync", env=connect(emu))
            still_running = running.poll() is None

    assert still_running, "the first sync ended before the second one started"
    assert second.exit_code == 5
    assert second.stderr.startswith("error: another sync of this lake is running")
    _, errors = running.communicate(timeout=120)
    assert running.returncode == 0, errors.decode()
    lake = Lake(
        dlt.destinations.duckdb(str(tmp_path / "lake.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    assert_exact(LakeReader(lake), emu.truth())


def test_ctrl_c_exits_130(
    cgsync: Callable[..., Result],
    emulator: Callable[..., Emulator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = emulator(records=10)

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("cgsync._runner.run_sync", interrupted)
    result = cgsync("sync", "--quiet", env=connect(emu))
    assert result.exit_code == 130
    assert "the last checkpoint is kept" in result.stderr


def test_the_secret_appears_in_no_output_log_state_or_table(
    cgsync: Callable[..., Result], emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = emulator(records=500, client_secret=SECRET)
    synced = cgsync("sync", "--json", env=connect(emu))
    assert synced.exit_code == 0, synced.output
    refused = cgsync("sync", env=connect(emu, CUSTOMERGAUGE_CLIENT_SECRET=SECRET + "-wrong"))
    assert refused.exit_code == 3

    assert SECRET not in synced.output + synced.stderr + refused.output + refused.stderr
    for path in (tmp_path / "pipelines").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    with duckdb.connect(str(tmp_path / "lake.duckdb"), read_only=True) as lake:
        tables = lake.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
        ).fetchall()
        for schema, table in tables:
            text = str(lake.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall())
            assert SECRET not in text, table
        (state,) = lake.execute(
            "SELECT state FROM customergauge._dlt_pipeline_state ORDER BY version DESC LIMIT 1"
        ).fetchone()
    assert SECRET not in json.dumps(decompress_state(state))


def test_the_sync_does_not_import_the_emulator() -> None:
    probe = (
        "import sys, cgsync.source, cgsync._runner, cgsync._status, cgsync._sync_cli;"
        "print(sorted(m for m in sys.modules if m.startswith('cgsync.emulator')))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert imported.stdout.strip() == "[]"


def test_a_duckdb_out_of_memory_exits_4_saying_how_to_raise_the_limit_and_loses_nothing(
    cgsync: Callable[..., Result], emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = emulator(records=3_000)
    tight = {"DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG": '{"memory_limit": "2MB"}'}

    failed = cgsync("sync", "--quiet", env=connect(emu, **tight))
    resumed = cgsync("sync", "--quiet", env=connect(emu))

    assert failed.exit_code == 4, failed.output
    [line] = failed.stderr.splitlines()
    assert "ran out of DuckDB's memory_limit" in line and "memory_limit" in line
    assert resumed.exit_code == 0, resumed.output
    lake = Lake(
        dlt.destinations.duckdb(str(tmp_path / "lake.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    assert_exact(LakeReader(lake), emu.truth())


def test_a_load_out_of_the_syncs_own_duckdb_memory_goes_on_one_job_at_a_time_then_with_the_next_limit(
    cgsync: Callable[..., Result],
    emulator: Callable[..., Emulator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = emulator(records=3_000)
    # The sync's own ladder, its first step too small for any load.
    monkeypatch.setattr(_tuning, "DUCKDB_MEMORY_LIMITS", ("2MB", "96MB"))
    monkeypatch.setattr(_tuning, "DUCKDB_GLOBAL_CONFIG", {"memory_limit": "2MB", "threads": 1})
    monkeypatch.delenv(ENV_DUCKDB_GLOBAL_CONFIG, raising=False)  # restored afterwards

    synced = cgsync("sync", "--log-format", "json", env=connect(emu))

    assert synced.exit_code == 0, synced.output
    events = json_events(synced)
    eased = [event for event in events if event["event"] == "duckdb_load_eased"]
    # One job at a time first (same limit, still too small), then the next limit.
    assert [(event.get("load_workers"), event.get("memory_limit")) for event in eased] == [
        (1, None),
        (None, "96MB"),
    ]
    assert events[-1]["summary"]["outcome"] == "ok"
    lake = Lake(
        dlt.destinations.duckdb(str(tmp_path / "lake.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    assert_exact(LakeReader(lake), emu.truth())


def test_counting_a_lake_out_of_the_syncs_own_duckdb_memory_goes_on_with_the_next_limit(
    cgsync: Callable[..., Result],
    emulator: Callable[..., Emulator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = emulator(records=2_000)
    monkeypatch.delenv(ENV_DUCKDB_GLOBAL_CONFIG, raising=False)  # the sync's own ladder
    # As the counts after a 10M-record full refresh did.
    counts = out_of_duckdb_memory_once(monkeypatch, _runner, "lake_counts", lake_counts)
    synced = cgsync("sync", "--log-format", "json", env=connect(emu))

    assert synced.exit_code == 0, synced.output
    events = json_events(synced)
    eased = [event for event in events if event["event"] == "duckdb_load_eased"]
    assert [event.get("memory_limit") for event in eased] == [settings.DUCKDB_MEMORY_LIMITS[1]]
    assert len(counts) == 2
    summary = events[-1]["summary"]
    truth = emu.truth()
    assert summary["row_counts"]["responses"] == len(truth.responses)
    assert summary["row_counts"]["non_responses"] == len(truth.non_responses)


def test_a_reconcile_whose_search_for_unlisted_records_runs_out_of_memory_goes_on(
    cgsync: Callable[..., Result],
    emulator: Callable[..., Emulator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = emulator(records=2_000, seed=21, history_days=20, erasures=0.05)
    monkeypatch.delenv(ENV_DUCKDB_GLOBAL_CONFIG, raising=False)  # the sync's own ladder
    assert cgsync("sync", env=connect(emu)).exit_code == 0
    emu.clock.advance(timedelta(days=6))  # the erasures are due
    # In the query itself, as the 10M-record reconcile's anti-joins did at 96 MB.
    searches = out_of_duckdb_memory_once(monkeypatch, _reconcile, "stale_keys", stale_keys)
    reconciled = cgsync("sync", "--reconcile", "--log-format", "json", env=connect(emu))

    assert reconciled.exit_code == 0, reconciled.output
    events = json_events(reconciled)
    eased = [event for event in events if event["event"] == "duckdb_load_eased"]
    assert [event.get("memory_limit") for event in eased] == [settings.DUCKDB_MEMORY_LIMITS[1]]
    assert len(searches) == 2
    resources = events[-1]["summary"]["resources"]
    assert resources["responses"]["removed"] + resources["non_responses"]["removed"] > 0
    lake = Lake(
        dlt.destinations.duckdb(str(tmp_path / "lake.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    assert_exact(LakeReader(lake), emu.truth())


def out_of_duckdb_memory_once(
    monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str, step: Callable[..., Any]
) -> list[int]:
    """Make `module`'s `name` (`step`) raise a real DuckDB out-of-memory error on its first
    call; the list grows by one per call."""
    tiny = duckdb.connect(config={"memory_limit": "2MB", "threads": 1})
    calls: list[int] = []

    def out_of_memory_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            tiny.execute("SELECT list(range) FROM range(10000000) GROUP BY range % 1000").fetchall()
        return step(*args, **kwargs)

    monkeypatch.setattr(module, name, out_of_memory_once)
    return calls


def json_events(result: Result) -> list[dict[str, Any]]:
    """The events of a `--log-format json` run, in order."""
    return [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]


SYNC_PANELS = {
    "Options": ["--help"],
    "Credentials": ["--client-id", "--client-secret", "--region", "--auth-url", "--api-url"],
    "What to sync": ["--endpoints", "--with", "--per-page"],
    "Filters": ["--period-field", "--since", "--until", "--cgid", "--outbound-filter"],
    "Lifecycle": [
        "--source-timezone",
        "--refresh-window",
        "--v6-lookback",
        "--full-refresh",
        "--reconcile",
        "--new-client-id",
    ],
    "Checkpoints": ["--checkpoint-pages", "--checkpoint-seconds", "--parallel"],
    "Lake": ["--destination", "--dataset", "--table-format", "--pipeline-name", "--pipelines-dir"],
    "Output": ["--json", "--quiet", "--log-format"],
}
STATUS_PANELS = {
    "Options": ["--help"],
    "Lake": ["--destination", "--dataset", "--pipeline-name"],
    "Output": ["--json"],
}


@pytest.mark.parametrize(("command", "panels"), [("sync", SYNC_PANELS), ("status", STATUS_PANELS)])
def test_help_groups_the_options_in_panels(command: str, panels: dict[str, list[str]]) -> None:
    shown = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert shown.exit_code == 0, shown.output
    option_panels: dict[str, str] = {}
    title = None
    for line in shown.stdout.splitlines():
        if heading := re.match(r"╭─ (.+?) ─", line):
            title = heading[1]
        elif option := re.match(r"│\s+(--[\w-]+)", line):
            option_panels[option[1]] = title
    assert list(dict.fromkeys(option_panels.values())) == list(panels)
    assert option_panels == {
        option: title for title, options in panels.items() for option in options
    }


def test_the_defaults_shown_are_the_settings() -> None:
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    sync = {param.name: param.default for param in command.commands["sync"].params}
    status = {param.name: param.default for param in command.commands["status"].params}
    assert sync["endpoints"].split(",") == list(settings.DEFAULT_RESOURCES)
    assert parse_duration(sync["refresh_window"], "") == settings.DEFAULT_REFRESH_WINDOW
    assert parse_duration(sync["v6_lookback"], "") == settings.DEFAULT_V6_LOOKBACK
    expected = {
        "source_timezone": settings.DEFAULT_SOURCE_TIMEZONE,
        "checkpoint_pages": settings.DEFAULT_CHECKPOINT_PAGES,
        "checkpoint_seconds": settings.DEFAULT_CHECKPOINT_SECONDS,
        "parallel": settings.DEFAULT_PARALLEL,
        "destination": settings.DEFAULT_DESTINATION,
        "dataset": settings.DEFAULT_DATASET,
        "table_format": settings.DEFAULT_TABLE_FORMAT,
        "pipeline_name": settings.DEFAULT_PIPELINE_NAME,
        "log_format": settings.DEFAULT_LOG_FORMAT,
    }
    assert {name: sync[name] for name in expected} == expected
    assert {name: status[name] for name in ("destination", "dataset", "pipeline_name")} == {
        "destination": settings.DEFAULT_DESTINATION,
        "dataset": settings.DEFAULT_DATASET,
        "pipeline_name": settings.DEFAULT_PIPELINE_NAME,
    }
    assert settings.DEFAULT_LOG_FORMAT in settings.LOG_FORMATS


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(hours=72), "72h"),
        (timedelta(days=30), "30d"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(hours=1.5), "90m"),
        (timedelta(days=365), "365d"),
        (timedelta(hours=150), "150h"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(0), "0s"),
    ],
)
def test_a_duration_is_formatted_as_parse_duration_reads_it(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text
    assert parse_duration(text, "--refresh-window") == duration
