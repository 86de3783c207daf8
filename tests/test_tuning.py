"""tune_sync_process: what a `cgsync sync` process sets, and that the user's dlt config wins."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dlt
import duckdb
import pyarrow as pa
import pytest

from cgsync import _tuning
from cgsync._tuning import load_one_job_at_a_time, raise_duckdb_memory_limit, tune_sync_process
from cgsync.settings import DUCKDB_GLOBAL_CONFIG, DUCKDB_MEMORY_LIMITS, MALLOC_ARENAS

TELEMETRY = "RUNTIME__DLTHUB_TELEMETRY"
DUCKDB_CONFIG = "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG"
ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL"
DELETE_JOBS = "LOAD__DELETE_COMPLETED_JOBS"
MALLOC_ENVIRONMENT = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_")


@pytest.fixture(autouse=True)
def process(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The environment is restored afterwards; the GC, Arrow and malloc calls are recorded, not
    made."""
    monkeypatch.delenv(TELEMETRY, raising=False)
    monkeypatch.delenv(DUCKDB_CONFIG, raising=False)
    monkeypatch.delenv(ARROW_POOL, raising=False)
    monkeypatch.delenv(DELETE_JOBS, raising=False)
    for name in MALLOC_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    calls: list[str] = []
    monkeypatch.setattr(_tuning, "_compact_malloc", lambda: calls.append("malloc"))
    monkeypatch.setattr(pa, "set_memory_pool", lambda pool: calls.append(pool.backend_name))
    yield calls


def test_a_sync_process_turns_off_telemetry_and_uses_malloc_compactly(
    process: list[str],
) -> None:
    tune_sync_process()

    assert dlt.config.get("runtime.dlthub_telemetry", bool) is False
    assert process == ["system", "malloc"]


def test_the_users_own_settings_win(monkeypatch: pytest.MonkeyPatch, process: list[str]) -> None:
    monkeypatch.setenv(TELEMETRY, "true")
    monkeypatch.setenv(DUCKDB_CONFIG, '{"threads": 2}')
    monkeypatch.setenv(ARROW_POOL, "mimalloc")
    monkeypatch.setenv(DELETE_JOBS, "false")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    tune_sync_process()

    assert dlt.config.get("runtime.dlthub_telemetry", bool) is True
    assert dlt.config.get("load.delete_completed_jobs", bool) is False
    assert dlt.config.get("destination.duckdb.credentials.global_config", dict) == {"threads": 2}
    assert "system" not in process
    assert "malloc" not in process


def tuned_run(tmp_path: Path) -> dlt.Pipeline:
    """A pipeline run into DuckDB in a tuned process."""
    tune_sync_process()
    pipeline = dlt.pipeline(
        pipeline_name="tuning",
        destination=dlt.destinations.duckdb(str(tmp_path / "lake.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    pipeline.run([{"id": 1}], table_name="rows")
    return pipeline


def test_a_loaded_package_keeps_no_copy_of_its_data(tmp_path: Path) -> None:
    tuned_run(tmp_path)

    [package] = (tmp_path / "pipelines" / "tuning" / "load" / "loaded").iterdir()
    assert (package / "schema.json").is_file()
    assert not list(package.glob("*_jobs/*"))


# Counts glibc's malloc arenas after 8 threads have each held memory at once.
COUNT_ARENAS = """
import ctypes, re, sys, threading
from cgsync._tuning import tune_sync_process
if sys.argv[1] == "tuned":
    tune_sync_process()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.open_memstream.restype = ctypes.c_void_p
together = threading.Barrier(8)
def hold():
    blocks = [libc.malloc(1024) for _ in range(100)]
    together.wait()
    for block in blocks:
        libc.free(block)
threads = [threading.Thread(target=hold) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
text, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = ctypes.c_void_p(libc.open_memstream(ctypes.byref(text), ctypes.byref(size)))
libc.malloc_info(0, stream)
libc.fclose(stream)
print(len(re.findall('<heap nr=', ctypes.string_at(text, size.value).decode())))
"""


def malloc_arenas(how: str, **environment: str) -> int:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    run = subprocess.run(
        [sys.executable, "-c", COUNT_ARENAS, how],
        env={**base, **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(run.stdout)


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "malloc_info"), reason="glibc's malloc only")
def test_a_sync_process_keeps_two_malloc_arenas_unless_the_user_sets_them() -> None:
    assert malloc_arenas("plain") > MALLOC_ARENAS
    assert malloc_arenas("tuned") == MALLOC_ARENAS
    assert malloc_arenas("tuned", MALLOC_ARENA_MAX="4") == 4


def test_duckdb_runs_on_one_thread_with_bounded_memory(tmp_path: Path) -> None:
    pipeline = tuned_run(tmp_path)

    with pipeline.sql_client() as sql:
        [(threads, memory_limit)] = sql.execute_sql(
            "SELECT current_setting('threads'), current_setting('memory_limit')"
        )
    assert threads == 1
    assert memory_limit == duckdb_setting("memory_limit", DUCKDB_GLOBAL_CONFIG["memory_limit"])


def duckdb_setting(name: str, value: str) -> str:
    """`value` as DuckDB shows the setting `name` once set (e.g. "32MB" -> "30.5 MiB")."""
    with duckdb.connect(config={name: value}) as connection:
        [(shown,)] = connection.execute(f"SELECT current_setting('{name}')").fetchall()
    return shown


TRACKER_PROBE = """
import threading, dlt
from cgsync._tuning import tune_sync_process
from dlt.common.runtime import anon_tracker
tune_sync_process()
pipeline = dlt.pipeline("probe", destination=dlt.destinations.duckdb({lake!r}),
                        pipelines_dir={pipelines!r})
pipeline.run([{{"id": 1}}], table_name="rows")
tracking = anon_tracker._ANON_TRACKER_ENDPOINT is not None
threads = any(t.name.startswith("anon_tracker") for t in threading.enumerate())
print(tracking, threads)
"""


@pytest.mark.parametrize(("setting", "expected"), [(None, "False False"), ("true", "True True")])
def test_the_telemetry_tracker_never_starts_in_a_sync_process_unless_the_user_wants_it(
    tmp_path: Path, setting: str | None, expected: str
) -> None:
    """dlt starts its tracker when its config is first read: it must be stopped, not only
    configured off afterwards (a fresh interpreter: the tracker is process-wide)."""
    env = {name: value for name, value in os.environ.items() if name != TELEMETRY}
    if setting is not None:
        env[TELEMETRY] = setting
    probe = TRACKER_PROBE.format(
        lake=str(tmp_path / "lake.duckdb"), pipelines=str(tmp_path / "pipelines")
    )

    finished = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )

    assert finished.stdout.split("\n")[-2] == expected


def test_a_skipped_step_is_the_only_one_not_taken(process: list[str]) -> None:
    tune_sync_process(skip={"compact-malloc"})

    assert process == ["system"]
    assert dlt.config.get("runtime.dlthub_telemetry", bool) is False


def test_an_unknown_step_is_refused_before_any_is_taken(process: list[str]) -> None:
    with pytest.raises(ValueError, match="no tuning step 'malloc': use one of"):
        tune_sync_process(skip={"malloc"})

    assert process == []


def test_the_syncs_own_duckdb_limit_goes_up_a_step_at_a_time_and_a_users_never(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tune_sync_process()
    assert json.loads(os.environ[DUCKDB_CONFIG])["memory_limit"] == DUCKDB_MEMORY_LIMITS[0]

    raised = [raise_duckdb_memory_limit() for _ in DUCKDB_MEMORY_LIMITS]

    assert raised == [*DUCKDB_MEMORY_LIMITS[1:], None]
    assert json.loads(os.environ[DUCKDB_CONFIG]) == {
        **DUCKDB_GLOBAL_CONFIG,
        "memory_limit": DUCKDB_MEMORY_LIMITS[-1],
    }
    for users in ('{"memory_limit": "96MB"}', '{"memory_limit": "96MB", "threads": 4}', "x"):
        monkeypatch.setenv(DUCKDB_CONFIG, users)
        assert raise_duckdb_memory_limit() is None
        assert os.environ[DUCKDB_CONFIG] == users


def test_loads_go_one_job_at_a_time_once_asked_and_a_users_workers_stay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOAD__WORKERS", raising=False)

    assert [load_one_job_at_a_time(), load_one_job_at_a_time()] == [True, False]
    assert dlt.config.get("load.workers", int) == 1  # as dlt's loader resolves it

    monkeypatch.setenv("LOAD__WORKERS", "8")
    assert load_one_job_at_a_time() is False
    assert os.environ["LOAD__WORKERS"] == "8"
