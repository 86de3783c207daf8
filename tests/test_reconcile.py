"""`--reconcile`: the lake loses what the API no longer lists (erasures), and nothing else."""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from machines import Machine, connect
from sync_lake import LakeReader, assert_exact, make_lake, sync_options
from timing import hold_request

from cgsync import ConfigError, Lake, read_status, run_sync
from cgsync.emulator import Emulator

MAIN = ("responses", "non_responses")
CHILDREN = ("responses__tags", "responses__drivers", "responses__questions")


def all_cgids(reader: LakeReader) -> set[int]:
    cgids = set(reader.cgids("responses")) | set(reader.cgids("non_responses"))
    for child in CHILDREN:
        cgids |= set(reader.cgids(child))
    return cgids


def test_a_reconcile_deletes_every_row_of_an_erased_record_and_nothing_still_listed(
    emulator: Callable[..., Emulator], any_format_lake: Lake
) -> None:
    lake = any_format_lake
    emu = emulator(records=2_000, seed=21, history_days=20, erasures=0.05)
    run_sync(sync_options(emu, lake))
    emu.clock.advance(timedelta(days=6))  # the last days' erasures are due
    run_sync(sync_options(emu, lake))
    reader = LakeReader(lake)
    truth = emu.truth()
    listed = set(truth.responses) | set(truth.non_responses)
    erased = all_cgids(reader) - listed
    assert erased, "the periodic runs kept erased records"

    summary = run_sync(sync_options(emu, lake, reconcile=True))

    assert_exact(reader, emu.truth())
    assert all_cgids(reader) & erased == set(), "main and child rows alike"
    assert listed <= all_cgids(reader) | set(truth.non_responses)
    removed = summary.resources["responses"].removed + summary.resources["non_responses"].removed
    assert removed >= len(erased) and summary.reconcile
    status = read_status(lake)
    assert status["last_reconcile"]["outcome"] == "ok"
    assert status["last_reconcile"]["reconcile"] is True

    again = run_sync(sync_options(emu, lake, reconcile=True))
    assert {name: r.removed for name, r in again.resources.items()} == {
        "responses": 0,
        "non_responses": 0,
    }
    assert_exact(reader, emu.truth())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoints": ("responses",)}, "add non_responses to --endpoints"),
        ({"filters_cgid": 1001}, "drop the filters"),
    ],
)
def test_a_reconcile_of_part_of_the_lake_is_refused(
    emulator: Callable[..., Emulator], tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    from cgsync._walks import Filters

    emu = emulator(records=100)
    options = dict(changes)
    if "filters_cgid" in options:
        options = {"filters": Filters(cgid=int(options.pop("filters_cgid")))}  # type: ignore[arg-type]
    with make_lake("duckdb", tmp_path) as lake, pytest.raises(ConfigError, match=message):
        run_sync(sync_options(emu, lake, reconcile=True, **options))
    assert emu.stats()["api_calls"] == 0


@pytest.mark.slow
def test_a_reconcile_killed_at_any_moment_deletes_nothing_still_listed_and_the_next_finishes(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    emu = emulator(records=3_000, seed=22, history_days=20, erasures=0.05)
    here = tmp_path / "here"
    here.mkdir()
    flags = ("--quiet", "--per-page", "100", "--checkpoint-pages", "2")
    assert machine.cgsync("sync", *flags, cwd=here, env=connect(emu)).returncode == 0
    emu.clock.advance(timedelta(days=6))
    reader = LakeReader(Lake(str(here / "cgsync.duckdb"), pipelines_dir=str(tmp_path / "reader")))
    truth = emu.truth()
    listed = set(truth.responses) | set(truth.non_responses)
    erased = all_cgids(reader) - listed
    assert erased
    still_listed = {table: set(reader.cgids(table)) & listed for table in (*MAIN, *CHILDREN)}

    # Into the walks, at different depths: killed while awaiting that call (each run resumes the
    # last, and the third ends after 44 calls; should one end sooner, there is nothing to kill).
    for calls in (5, 25, 40):
        with hold_request(emu, calls) as held:
            running = machine.start("sync", "--reconcile", *flags, cwd=here, env=connect(emu))
            held.wait_reached(running)
            running.send_signal(signal.SIGKILL)  # does nothing once the process has ended
        running.wait(timeout=60)
        for table, cgids in still_listed.items():
            assert cgids <= set(reader.cgids(table)), f"a listed record left {table}"

    finished = machine.cgsync("sync", "--reconcile", *flags, cwd=here, env=connect(emu))

    assert finished.returncode == 0, finished.stderr
    assert_exact(reader, emu.truth())
    assert all_cgids(reader) & erased == set()


@pytest.mark.parametrize("parallel", [1, 2])
def test_exact_with_every_reading_at_once_under_faults_and_token_expiry(
    emulator: Callable[..., Emulator], lake: Lake, parallel: int
) -> None:
    emu = emulator(
        records=2_500,
        seed=23,
        history_days=20,
        responses_order="record",
        edits=True,
        erasures=0.05,
        value_variants=True,
        refuse_answer_period=True,
    )
    emu.faults.update(rate_5xx=0.03, rate_429=0.02, retry_after_seconds=0)
    options = {"per_page": 250, "parallel": parallel, "v6_lookback": timedelta(days=60)}

    run_sync(sync_options(emu, lake, **options))
    for _ in range(3):
        emu.clock.advance(timedelta(days=2))
        emu.faults.expire_tokens()
        run_sync(sync_options(emu, lake, **options))
    reader = LakeReader(lake)
    truth = emu.truth()
    assert set(truth.responses) <= set(reader.cgids("responses")), "late answers all in"
    summary = run_sync(sync_options(emu, lake, reconcile=True, **options))

    assert_exact(reader, emu.truth())
    assert summary.rejected_values == 0
    assert sum(resource.removed for resource in summary.resources.values()) > 0
