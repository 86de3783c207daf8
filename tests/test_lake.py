"""A lake's identity, as users meet it: `cgsync sync` with the defaults in their directories,
on one machine or several, against one CustomerGauge system or two."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest
from machines import Machine, connect, directory
from sync_lake import LakeReader, assert_exact, drop_datasets, postgres_dsn
from timing import hold_request, paused

from cgsync._lake import Lake, build_pipeline, lake_pipelines_dir, resolve_destination
from cgsync.emulator import Emulator

LAKE_FILE = "cgsync.duckdb"


def reader(path: Path, tmp_path: Path, dataset: str = "customergauge") -> LakeReader:
    """Reads the DuckDB lake at `path` (its own working directory, none of the machine's)."""
    return LakeReader(Lake(str(path), dataset, pipelines_dir=str(tmp_path / "reader")))


def snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a DuckDB lake."""
    with duckdb.connect(str(path), read_only=True) as lake:
        tables = lake.execute(
            "SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL"
        ).fetchall()
        return {
            f"{schema}.{table}": lake.execute(
                f'SELECT * FROM "{schema}"."{table}" ORDER BY ALL'
            ).fetchall()
            for schema, table in tables
        }


def summary_of(result: Any) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def records(summary: dict[str, Any]) -> int:
    return sum(resource["records"] for resource in summary["resources"].values())


def synced_directory(machine: Machine, emu: Emulator, tmp_path: Path) -> Path:
    """A fresh directory `here` in which `machine` has run `cgsync sync` of `emu` once."""
    here = directory(tmp_path / "here")
    summary_of(machine.cgsync("sync", "--json", cwd=here, env=connect(emu)))
    return here


def test_the_readme_path_the_emulator_first_then_the_real_system_in_another_directory(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    trial = emulator(records=1_500, seed=1)
    real = emulator(records=800, seed=2)  # fewer records: the trial's cursors would skip all
    tried, production = directory(tmp_path / "trial"), directory(tmp_path / "production")

    summary_of(machine.cgsync("sync", "--json", cwd=tried, env=connect(trial)))
    real_run = summary_of(machine.cgsync("sync", "--json", cwd=production, env=connect(real)))

    assert records(real_run) == 800
    assert real_run["row_counts"]["responses"] == len(real.truth().responses)
    assert_exact(reader(production / LAKE_FILE, tmp_path), real.truth())
    assert_exact(reader(tried / LAKE_FILE, tmp_path), trial.truth())


def test_two_directories_with_two_systems_keep_two_lakes_and_their_own_cursors(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    systems = {"a": emulator(records=1_200, seed=3), "b": emulator(records=1_700, seed=4)}
    places = {name: directory(tmp_path / name) for name in systems}

    for periodic in (False, True):  # an initial run each, then a periodic one each
        for name, emu in systems.items():
            if periodic:
                emu.clock.advance(timedelta(hours=6))
            summary_of(machine.cgsync("sync", "--json", cwd=places[name], env=connect(emu)))

    for name, emu in systems.items():
        assert_exact(reader(places[name] / LAKE_FILE, tmp_path), emu.truth())
        status = json.loads(machine.cgsync("status", "--json", cwd=places[name]).stdout)
        assert status["system"] == {
            "api_host": emu.base_url.removeprefix("http://"),
            "client_id": emu.client_id,
        }
        assert [run["outcome"] for run in status["recent_runs"]] == ["ok", "ok"]


def test_another_system_into_the_same_lake_exits_2_naming_both_and_changes_nothing(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    ours, theirs = emulator(records=1_000, seed=5), emulator(records=1_000, seed=6)
    here = synced_directory(machine, ours, tmp_path)
    before = snapshot(here / LAKE_FILE)

    refused = machine.cgsync("sync", cwd=here, env=connect(theirs))

    assert refused.returncode == 2
    [line] = refused.stderr.splitlines()
    assert ours.base_url.removeprefix("http://") in line
    assert theirs.base_url.removeprefix("http://") in line
    assert theirs.stats()["api_calls"] == theirs.stats()["token_calls"] == 0
    assert snapshot(here / LAKE_FILE) == before
    assert_exact(reader(here / LAKE_FILE, tmp_path), ours.truth())


def test_rotated_credentials_need_new_client_id_once(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    emu = emulator(records=600)
    here = synced_directory(machine, emu, tmp_path)
    emu.rotate_credentials("cgsync-rotated", "a-new-secret")
    emu.clock.advance(timedelta(hours=3))
    before = snapshot(here / LAKE_FILE)

    refused = machine.cgsync("sync", cwd=here, env=connect(emu))

    assert refused.returncode == 2, refused.stderr
    assert "--new-client-id" in refused.stderr and "cgsync-rotated" in refused.stderr
    assert "a-new-secret" not in refused.stderr
    assert snapshot(here / LAKE_FILE) == before
    summary_of(machine.cgsync("sync", "--json", "--new-client-id", cwd=here, env=connect(emu)))
    summary_of(machine.cgsync("sync", "--json", cwd=here, env=connect(emu)))
    status = json.loads(machine.cgsync("status", "--json", cwd=here).stdout)
    assert status["system"]["client_id"] == "cgsync-rotated"
    assert_exact(reader(here / LAKE_FILE, tmp_path), emu.truth())


def test_a_second_dataset_in_the_same_file_is_another_lake_with_its_own_cursors(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    systems = {"first": emulator(records=2_000, seed=7), "second": emulator(records=600, seed=8)}
    here = directory(tmp_path / "here")
    summary_of(
        machine.cgsync(
            "sync", "--json", "--dataset", "first", cwd=here, env=connect(systems["first"])
        )
    )
    with duckdb.connect(str(here / LAKE_FILE)) as lake:
        lake.execute("CREATE SCHEMA second")  # made ready beforehand, as a DBA would

    second = machine.cgsync(
        "sync", "--json", "--dataset", "second", cwd=here, env=connect(systems["second"])
    )

    assert records(summary_of(second)) == 600
    for dataset, emu in systems.items():
        assert_exact(reader(here / LAKE_FILE, tmp_path, dataset), emu.truth())


def test_another_duckdb_file_in_the_same_directory_is_another_lake(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    emu = emulator(records=1_000)
    here = synced_directory(machine, emu, tmp_path)

    other = summary_of(
        machine.cgsync(
            "sync", "--json", "--destination", "other.duckdb", cwd=here, env=connect(emu)
        )
    )

    assert records(other) == 1_000
    assert_exact(reader(here / "other.duckdb", tmp_path), emu.truth())


@pytest.mark.postgres
def test_a_switch_to_postgres_under_the_default_pipeline_name_is_another_lake(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    systems = {"duckdb": emulator(records=2_000, seed=9), "postgres": emulator(records=600)}
    here = directory(tmp_path / "here")
    dataset = f"cgsync_test_{uuid.uuid4().hex[:10]}"
    lake = Lake(dlt.destinations.postgres(postgres_dsn()), dataset, pipelines_dir=str(tmp_path))
    env = {"DESTINATION__POSTGRES__CREDENTIALS": postgres_dsn(), **connect(systems["postgres"])}
    summary_of(
        machine.cgsync(
            "sync", "--json", "--dataset", dataset, cwd=here, env=connect(systems["duckdb"])
        )
    )
    try:
        with build_pipeline(lake).sql_client() as sql:
            sql.execute_sql(f'CREATE SCHEMA "{dataset}"')  # made ready beforehand by a DBA

        into_postgres = machine.cgsync(
            "sync", "--json", "--destination", "postgres", "--dataset", dataset, cwd=here, env=env
        )

        assert records(summary_of(into_postgres)) == 600
        assert_exact(LakeReader(lake), systems["postgres"].truth())
        assert_exact(reader(here / LAKE_FILE, tmp_path, dataset), systems["duckdb"].truth())
    finally:
        drop_datasets(lake)


def test_a_lost_local_directory_is_rebuilt_from_the_lake(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    emu = emulator(records=2_000)
    here = synced_directory(machine, emu, tmp_path)
    machine.wipe()
    emu.clock.advance(timedelta(hours=12))

    periodic = summary_of(machine.cgsync("sync", "--json", cwd=here, env=connect(emu)))

    assert periodic["resources"]["responses"]["pages"] == 2, "resumed at the stored cursor"
    assert_exact(reader(here / LAKE_FILE, tmp_path), emu.truth())


def test_the_local_directory_is_keyed_by_destination_location_and_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(directory(tmp_path / "one"))
    one = Lake()
    keyed = {
        "default": lake_pipelines_dir(one, resolve_destination("duckdb")),
        "dataset": lake_pipelines_dir(Lake(dataset="other"), resolve_destination("duckdb")),
        "file": lake_pipelines_dir(one, resolve_destination("other.duckdb")),
        "postgres a": lake_pipelines_dir(
            one, dlt.destinations.postgres("postgresql://u:pw@host-a:5432/lake")
        ),
        "postgres b": lake_pipelines_dir(
            one, dlt.destinations.postgres("postgresql://u:pw@host-b:5432/lake")
        ),
    }
    monkeypatch.chdir(directory(tmp_path / "two"))
    keyed["directory"] = lake_pipelines_dir(one, resolve_destination("duckdb"))

    assert len(set(keyed.values())) == len(keyed)
    rotated_password = dlt.destinations.postgres("postgresql://u:other@host-a:5432/lake")
    assert lake_pipelines_dir(one, rotated_password) == keyed["postgres a"]
    assert all("pw" not in path.name for path in keyed.values())


def test_the_default_lake_is_cgsync_duckdb_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("first", "second"):
        here = directory(tmp_path / name)
        monkeypatch.chdir(here)
        pipeline = build_pipeline(Lake(pipelines_dir=str(tmp_path / "pipelines")))
        assert pipeline.destination_client().config.credentials.database == str(here / LAKE_FILE)


@pytest.mark.parametrize("kind", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_machines_never_sync_one_lake_at_once(
    emulator: Callable[..., Emulator], tmp_path: Path, kind: str
) -> None:
    emu = emulator(records=3_000)
    first, second = Machine(tmp_path / "first"), Machine(tmp_path / "second")
    shared = directory(tmp_path / "shared")  # a shared disk, or one PostgreSQL server
    dataset = f"cgsync_test_{uuid.uuid4().hex[:10]}"
    flags = ["--per-page", "100", "--dataset", dataset]
    env = connect(emu)
    if kind == "postgres":
        flags += ["--destination", "postgres"]
        env["DESTINATION__POSTGRES__CREDENTIALS"] = postgres_dsn()
    lake = (
        Lake(dlt.destinations.postgres(postgres_dsn()), dataset, pipelines_dir=str(tmp_path))
        if kind == "postgres"
        else Lake(str(shared / LAKE_FILE), dataset, pipelines_dir=str(tmp_path / "reader"))
    )
    try:
        # The locks come before the first data request: while it is held, the first sync holds
        # them and cannot end; stopped, it stays so while the second machine tries.
        with hold_request(emu) as held:
            running = first.start("sync", "--quiet", *flags, cwd=shared, env=env)
            assert held.wait_reached(running), "the first sync ended before its first request"
            with paused(running):
                held.release()
                refused = second.cgsync("sync", *flags, cwd=shared, env=env)
                still_running = running.poll() is None

        assert still_running, "the first sync ended before the second one started"
        assert refused.returncode == 5, refused.stderr
        [line] = refused.stderr.splitlines()
        assert line.startswith("error: another")
        _, errors = running.communicate(timeout=300)
        assert running.returncode == 0, errors
        assert_exact(LakeReader(lake), emu.truth())
    finally:
        if kind == "postgres":
            drop_datasets(lake)


@pytest.mark.parametrize(
    ("credentials", "code", "message"),
    [
        (None, 2, "error: destination configuration: Missing"),
        ("postgresql://u:pw@127.0.0.1:1/db", 4, "error: cannot connect to the lake on postgres"),
    ],
)
def test_a_postgres_lake_that_cannot_be_reached_is_one_line_and_no_api_call(
    emulator: Callable[..., Emulator],
    machine: Machine,
    tmp_path: Path,
    credentials: str | None,
    code: int,
    message: str,
) -> None:
    emu = emulator(records=10)
    env = connect(emu)
    if credentials:
        env["DESTINATION__POSTGRES__CREDENTIALS"] = credentials

    refused = machine.cgsync("sync", "--destination", "postgres", cwd=tmp_path, env=env)

    assert refused.returncode == code
    [line] = refused.stderr.splitlines()
    assert line.startswith(message) and ":pw@" not in line
    assert emu.stats()["api_calls"] == 0
