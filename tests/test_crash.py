"""Crash: `kill -9` the sync at random moments of a 200k-record initial load, then finish it.

Each killed run loses at most its current checkpoint; the next one loads what was extracted and
resumes from the stored cursors. After a last run to completion the lake is exact.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dlt
import pytest
from sync_lake import LakeReader, assert_exact
from timing import hold_request

from cgsync import Lake
from cgsync.emulator import Emulator

KILLS = 5
# `python -m cgsync` that dies like kill -9 right after the load job of the responses has
# committed, before dlt records the job as done: the next sync runs that job again.
DIE_AFTER_LOADING_RESPONSES = """
import os, runpy
from dlt.destinations.impl.duckdb.duck import DuckDbCopyJob
run = DuckDbCopyJob.run
def run_then_die(self):
    run(self)
    if self.load_table_name == "responses":
        os._exit(137)
DuckDbCopyJob.run = run_then_die
runpy.run_module("cgsync", run_name="__main__", alter_sys=True)
"""


def sync_process(
    emu: Emulator,
    database: Path,
    pipelines_dir: Path,
    checkpoint_pages: int = 10,
    python: list[str] | None = None,
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CUSTOMERGAUGE_CLIENT_ID": emu.client_id,
        "CUSTOMERGAUGE_CLIENT_SECRET": emu.client_secret,
        "CUSTOMERGAUGE_AUTH_URL": emu.token_url,
        "CUSTOMERGAUGE_API_URL": emu.base_url,
        "DESTINATION__DUCKDB__CREDENTIALS": str(database),
    }
    command = [*(python or [sys.executable, "-m", "cgsync"]), "sync", "--quiet"]
    command += ["--checkpoint-pages", str(checkpoint_pages)]
    command += ["--pipelines-dir", str(pipelines_dir)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_a_sync_killed_again_and_again_ends_exact(
    emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = emulator(records=200_000, seed=21)
    database, pipelines_dir = tmp_path / "lake.duckdb", tmp_path / "pipelines"
    chance = random.Random(21)
    killed = 0
    for _ in range(KILLS):
        process = sync_process(emu, database, pipelines_dir)
        time.sleep(chance.uniform(2.0, 7.0))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait()

    finishing = sync_process(emu, database, pipelines_dir)
    _, errors = finishing.communicate(timeout=600)

    assert killed >= 3, "the sync finished before it could be killed"
    assert finishing.returncode == 0, errors.decode()
    lake = Lake(dlt.destinations.duckdb(str(database)), pipelines_dir=str(pipelines_dir))
    assert_exact(LakeReader(lake), emu.truth())


def test_a_load_job_run_again_after_a_kill_loads_its_rows_once(
    emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = emulator(records=6_000, seed=23)
    database, pipelines_dir = tmp_path / "lake.duckdb", tmp_path / "pipelines"
    dying = [sys.executable, "-c", DIE_AFTER_LOADING_RESPONSES]
    killed = sync_process(emu, database, pipelines_dir, python=dying)
    _, errors = killed.communicate(timeout=300)
    assert killed.returncode == 137, errors.decode()

    finishing = sync_process(emu, database, pipelines_dir)
    _, errors = finishing.communicate(timeout=300)

    assert finishing.returncode == 0, errors.decode()
    lake = Lake(dlt.destinations.duckdb(str(database)), pipelines_dir=str(pipelines_dir))
    assert_exact(LakeReader(lake), emu.truth())


def test_ctrl_c_exits_130_and_the_next_sync_resumes(
    emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = emulator(records=10_000, seed=22)
    database, pipelines_dir = tmp_path / "lake.duckdb", tmp_path / "pipelines"
    # Ctrl-C while the sync awaits its 5th data request: surely still running, a few pages in.
    with hold_request(emu, 5) as held:
        process = sync_process(emu, database, pipelines_dir, checkpoint_pages=2)
        assert held.wait_reached(process), "the sync ended before its 5th request"
        process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=120)

    assert process.returncode == 130, errors.decode()
    assert "interrupted: the last checkpoint is kept" in errors.decode()
    resumed = sync_process(emu, database, pipelines_dir)
    _, errors = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, errors.decode()
    lake = Lake(dlt.destinations.duckdb(str(database)), pipelines_dir=str(pipelines_dir))
    assert_exact(LakeReader(lake), emu.truth())
