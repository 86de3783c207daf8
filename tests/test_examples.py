"""The orchestrator examples in `examples/`, run as their users run them."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
from machines import connect
from sync_lake import LakeReader, assert_exact

from cgsync import Lake, read_status
from cgsync.emulator import Emulator

EXAMPLES = Path(__file__).parents[1] / "examples"


def load_example(name: str) -> ModuleType:
    """Import `examples/<name>` as its orchestrator does: by path."""
    spec = importlib.util.spec_from_file_location(f"example_{Path(name).stem}", EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def dagster() -> ModuleType:
    """Dagster, a test dependency: a skip without it, but a failure in CI, where it must be."""
    if os.environ.get("CI") == "true":
        import dagster

        return dagster
    return pytest.importorskip("dagster")


@pytest.fixture
def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An orchestrator's worker: a fresh working directory and dlt directory of its own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    return tmp_path


def test_the_dagster_asset_keeps_an_exact_lake_hourly_and_reconciles(
    emulator: Callable[..., Emulator], worker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dg = dagster()
    emu = emulator(records=2_000, seed=4, erasures=0.05, history_days=20)
    for name, value in connect(emu).items():  # the deployment's secrets
        monkeypatch.setenv(name, value)
    example = load_example("dagster_customergauge.py")
    lake = Lake(str(worker / "cgsync.duckdb"))
    reader = LakeReader(lake)

    first = dg.materialize([example.customergauge_lake], resources=example.resources)
    assert first.success
    assert_exact(reader, emu.truth())
    emu.clock.advance(timedelta(hours=1))
    hourly = dg.materialize([example.customergauge_lake], resources=example.resources)
    assert hourly.success
    assert_exact(reader, emu.truth())

    emu.clock.advance(timedelta(days=6))  # erasures fall due
    weekly = example.defs.resolve_job_def("customergauge_weekly_reconcile")
    reconciled = weekly.execute_in_process()
    assert reconciled.success
    assert_exact(reader, emu.truth())
    listed = set(emu.truth().responses) | set(emu.truth().non_responses)
    assert set(reader.cgids("non_responses")) <= listed

    (materialization,) = reconciled.asset_materializations_for_node("customergauge_lake")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["removed"] > 0
    assert metadata["rows"]["responses"] == len(emu.truth().responses)
    status = read_status(lake)
    assert [run["outcome"] for run in status["recent_runs"]] == ["ok", "ok", "ok"]
    assert status["last_reconcile"]["reconcile"] is True
    schedules = {s.job_name: s.cron_schedule for s in example.defs.schedules}
    assert schedules == {
        "customergauge_hourly": "5 * * * *",
        "customergauge_weekly_reconcile": "35 3 * * 0",
    }


def test_the_dagster_asset_takes_its_credentials_from_the_environment_only(
    emulator: Callable[..., Emulator], worker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dg = dagster()
    emu = emulator(records=100)
    for name, value in connect(emu, CUSTOMERGAUGE_CLIENT_SECRET="not-the-secret-77").items():
        monkeypatch.setenv(name, value)
    example = load_example("dagster_customergauge.py")

    result = dg.materialize(
        [example.customergauge_lake], resources=example.resources, raise_on_error=False
    )

    assert not result.success
    failure = result.failure_data_for_node("customergauge_lake")
    shown = failure.error.to_string()  # what the Dagster UI shows of the failure
    assert "AuthenticationError: CustomerGauge refused the credentials" in shown
    assert "not-the-secret-77" not in shown


def test_the_airflow_dags_import_and_sync_an_exact_lake(
    emulator: Callable[..., Emulator], worker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip(
        "airflow",
        reason="Airflow is not installed: it is not among the test dependencies (a whole "
        "scheduler with its own pins); install apache-airflow to run this test",
    )
    from airflow.models import DagBag

    emu = emulator(records=1_000)
    connection = {
        "conn_type": "generic",
        "login": emu.client_id,
        "password": emu.client_secret,
        "extra": {"auth_url": emu.token_url, "api_url": emu.base_url},
    }
    monkeypatch.setenv("AIRFLOW_CONN_CUSTOMERGAUGE", json.dumps(connection))

    bag = DagBag(dag_folder=str(EXAMPLES / "airflow_customergauge.py"))  # Airflow 2 and 3

    assert bag.import_errors == {}
    hourly = bag.dags["customergauge_hourly"]
    weekly = bag.dags["customergauge_weekly_reconcile"]
    assert [task.task_id for task in hourly.tasks] == ["sync"]
    assert [task.task_id for task in weekly.tasks] == ["reconcile"]
    assert hourly.max_active_runs == 1 and hourly.tasks[0].pool == "customergauge"

    example = load_example("airflow_customergauge.py")
    counts = example.sync_customergauge()
    assert counts["outcome"] == "ok"
    assert_exact(LakeReader(Lake(str(worker / "cgsync.duckdb"))), emu.truth())
