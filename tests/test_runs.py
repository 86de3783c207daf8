"""The run history in the lake, and `cgsync status` reading it on any machine."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import dlt
import pytest
from machines import Machine, connect, directory
from sync_lake import LakeReader, make_lake, postgres_dsn, sync_options

import cgsync
from cgsync import AuthenticationError, Lake, read_status, run_sync
from cgsync._lake import build_pipeline
from cgsync._tables import RUNS
from cgsync.emulator import Emulator
from cgsync.settings import RUNS_TABLE


@pytest.fixture(
    params=("duckdb", pytest.param("postgres", marks=pytest.mark.postgres), "delta", "iceberg")
)
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lake]:
    with make_lake(request.param, tmp_path) as lake:
        yield lake


def history(lake: Lake) -> list[dict[str, object]]:
    names = RUNS.names
    columns = ", ".join(names)
    rows = LakeReader(lake).rows(f"SELECT {columns} FROM {{t}} ORDER BY started_at", t=RUNS_TABLE)
    return [dict(zip(names, row, strict=True)) for row in rows]


def as_dict(value: object) -> dict[str, object]:
    """A JSON column as read back: parsed by the driver or still text."""
    return value if isinstance(value, dict) else json.loads(str(value))


def test_each_sync_appends_its_run_to_the_lake_ok_or_failed(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    emu = emulator(records=1_500)
    first = run_sync(sync_options(emu, lake, per_page=500))
    emu.rotate_credentials(emu.client_id, "a-rotated-secret")
    with pytest.raises(AuthenticationError):
        run_sync(sync_options(emu, lake, client_secret="the-old-secret"))
    emu.clock.advance(timedelta(hours=2))
    third = run_sync(sync_options(emu, lake, full_refresh=True))

    runs = history(lake)

    assert [run["outcome"] for run in runs] == ["ok", "failed", "ok"]
    assert [run["full_refresh"] for run in runs] == [False, False, True]
    assert "refused" in str(runs[1]["error"])
    for run, summary in ((runs[0], first), (runs[2], third)):
        resources = as_dict(run["resources"])
        assert resources == {
            name: {
                "pages": counts.pages,
                "records": counts.records,
                "refresh_pages": counts.refresh_pages,
                "refresh_records": counts.refresh_records,
                "removed": counts.removed,
                "cursor": counts.cursor,
            }
            for name, counts in summary.resources.items()
        }
        assert (run["api_calls"], run["token_calls"]) == (summary.api_calls, summary.token_calls)
        assert run["checkpoints"] == summary.checkpoints
        assert as_dict(run["row_counts"]) == summary.row_counts
    for run in runs:
        assert run["reconcile"] is False
        assert run["cgsync_version"] == cgsync.__version__
        assert run["dlt_version"] == dlt.__version__
        assert (run["api_host"], run["client_id"]) == (
            emu.base_url.removeprefix("http://"),
            emu.client_id,
        )
        assert run["finished_at"] >= run["started_at"]
    assert "the-old-secret" not in str(runs) and "a-rotated-secret" not in str(runs)
    assert len({run["run_id"] for run in runs}) == 3


def test_status_shows_the_lakes_runs_newest_first_and_the_age_of_the_last_good_one(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    emu = emulator(records=800)
    run_sync(sync_options(emu, lake))
    emu.rotate_credentials(emu.client_id, "a-rotated-secret")
    with pytest.raises(AuthenticationError):
        run_sync(sync_options(emu, lake, client_secret="the-old-secret"))

    status = read_status(lake)

    assert [run["outcome"] for run in status["recent_runs"]] == ["failed", "ok"]
    assert status["last_run"]["outcome"] == "failed"
    assert status["last_success"] == status["recent_runs"][1]
    assert 0 <= status["last_success_age_seconds"]
    assert status["system"] == {
        "api_host": emu.base_url.removeprefix("http://"),
        "client_id": emu.client_id,
    }
    assert RUNS_TABLE not in status["row_counts"]


def test_a_run_the_lake_could_not_take_is_added_by_the_next_sync(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    emu = emulator(records=3_000)
    here = directory(tmp_path / "here")
    tight = {"DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG": '{"memory_limit": "2MB"}'}

    failed = machine.cgsync("sync", "--quiet", cwd=here, env=connect(emu, **tight))
    resumed = machine.cgsync("sync", "--quiet", cwd=here, env=connect(emu))

    assert failed.returncode == 4 and resumed.returncode == 0, resumed.stderr
    status = json.loads(machine.cgsync("status", "--json", cwd=here).stdout)
    outcomes = [run["outcome"] for run in status["recent_runs"]]
    assert outcomes == ["ok", "failed"]
    assert "memory_limit" in status["recent_runs"][1]["error"]


def test_status_on_a_fresh_machine_reads_the_last_run_from_the_lake(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    emu = emulator(records=1_000)
    here = directory(tmp_path / "here")
    synced = machine.cgsync("sync", "--json", cwd=here, env=connect(emu))
    assert synced.returncode == 0, synced.stderr
    machine.wipe()

    shown = machine.cgsync("status", "--json", cwd=here)
    printed = machine.cgsync("status", cwd=here)

    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["last_run"]["outcome"] == "ok"
    assert status["last_run"]["started_at"] == json.loads(synced.stdout)["started_at"]
    assert status["last_success_age_seconds"] >= 0
    assert status["cursors"]["non_responses"]["all"] == {"cursor": 1_000, "complete": True}
    assert "last run: " in printed.stdout and " ok" in printed.stdout
    assert machine.local_state() == [], "status keeps nothing on the machine"


def test_status_of_a_directory_never_synced_exits_6_and_creates_nothing(
    machine: Machine, tmp_path: Path
) -> None:
    empty = directory(tmp_path / "empty")

    shown = machine.cgsync("status", cwd=empty)

    assert shown.returncode == 6
    [line] = shown.stderr.splitlines()
    assert "never synced" in line and "cgsync.duckdb" in line
    assert list(empty.iterdir()) == []
    assert machine.local_state() == []


@pytest.mark.postgres
def test_status_of_a_postgres_dataset_never_synced_exits_6_and_creates_nothing(
    machine: Machine, tmp_path: Path
) -> None:
    dataset = f"cgsync_test_{uuid.uuid4().hex[:10]}"
    env = {"DESTINATION__POSTGRES__CREDENTIALS": postgres_dsn()}
    lake = Lake(dlt.destinations.postgres(postgres_dsn()), dataset, pipelines_dir=str(tmp_path))

    shown = machine.cgsync(
        "status", "--destination", "postgres", "--dataset", dataset, cwd=tmp_path, env=env
    )

    assert shown.returncode == 6, shown.stderr
    assert "never synced" in shown.stderr
    with build_pipeline(lake).sql_client() as sql:
        schemas = sql.execute_sql(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
            f"{dataset}%",
        )
    assert schemas == []
