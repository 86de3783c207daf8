"""Exactness against the emulator: after every sync the lake equals the API's truth.

Each test runs on DuckDB, PostgreSQL (with CGSYNC_TEST_POSTGRES_DSN) and Delta tables.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sync_lake import LakeReader, assert_exact, sync_options

from cgsync import Lake, run_sync
from cgsync.emulator import Emulator

ZONE = "Europe/Amsterdam"
ROUNDS = (timedelta(hours=6), timedelta(hours=30), timedelta(days=4))


def sync_rounds(emu: Emulator, lake: Lake, **options: Any) -> None:
    """An initial sync, then a periodic sync after each clock advance; exact after each."""
    reader = LakeReader(lake)
    sync = sync_options(emu, lake, source_timezone=ZONE, **options)
    run_sync(sync)
    assert_exact(reader, emu.truth())
    for advance in ROUNDS:
        emu.clock.advance(advance)
        run_sync(sync)
        assert_exact(reader, emu.truth())


def test_initial_and_periodic_syncs_are_exact(
    emulator: Callable[..., Emulator], any_format_lake: Lake
) -> None:
    lake = any_format_lake
    emu = emulator(records=2_000, seed=5, timezone=ZONE)
    sync_rounds(emu, lake, per_page=400, checkpoint_pages=2)


def test_syncs_stay_exact_with_every_fault_switched_on(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    emu = emulator(records=2_000, seed=8, timezone=ZONE)
    emu.faults.update(
        rate_429=0.05,
        rate_5xx=0.05,
        rate_drop=0.03,
        rate_truncate=0.03,
        retry_after_seconds=0,
        token_ttl_seconds=2,
    )
    sync_rounds(emu, lake, per_page=250, checkpoint_pages=4)
    assert sum(emu.stats()["by_path"].values()) > 0


def test_v6_is_exact_for_answers_within_the_lookback(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    # Every invitation is younger than the lookback, so every late answer must be caught.
    emu = emulator(records=1_500, seed=9, timezone=ZONE, history_days=20)
    reader = LakeReader(lake)
    sync = sync_options(
        emu, lake, source_timezone=ZONE, endpoints=("responses_v6", "non_responses"), per_page=150
    )
    run_sync(sync)
    assert_exact(reader, emu.truth(), responses="responses_v6")
    for advance in ROUNDS:
        emu.clock.advance(advance)
        run_sync(sync)
        assert_exact(reader, emu.truth(), responses="responses_v6")


def test_v6_full_refresh_catches_answers_older_than_the_lookback(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    emu = emulator(records=1_500, seed=10, timezone=ZONE, history_days=20)
    v6_only: dict[str, Any] = {
        "source_timezone": ZONE,
        "endpoints": ("responses_v6",),
        "per_page": 20,
    }
    sync = sync_options(emu, lake, v6_lookback=timedelta(hours=1), **v6_only)
    run_sync(sync)
    emu.clock.advance(timedelta(days=3))
    run_sync(sync)
    missed = set(emu.truth().responses) - set(LakeReader(lake).cgids("responses_v6"))

    run_sync(sync_options(emu, lake, full_refresh=True, **v6_only))

    assert missed, "a one-hour lookback misses late answers to older invitations"
    assert set(LakeReader(lake).cgids("responses_v6")) == set(emu.truth().responses)


def test_a_first_load_while_the_clock_moves_ends_exact(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    """The clock moves while the first sync loads its checkpoints: records are answered, fail
    and arrive (late ones backdated) behind the walk. The next sync's cursors and refresh
    window make the lake exact, as after a first load that took no time."""
    emu = emulator(records=3_000, seed=12, timezone=ZONE)
    pages = 0

    def clock_moves(resource: str, records: int) -> None:
        nonlocal pages
        pages += 1
        if pages % 4 == 0:
            emu.clock.advance(timedelta(hours=12))

    sync = sync_options(emu, lake, source_timezone=ZONE, per_page=100, checkpoint_pages=5)
    first = run_sync(sync, on_page=clock_moves)
    reader = LakeReader(lake)
    for table in ("responses", "non_responses"):
        cgids = reader.cgids(table)
        assert len(cgids) == len(set(cgids)), f"a record twice in {table}"
    run_sync(sync)

    assert first.checkpoints >= 4 and pages >= 16
    assert_exact(reader, emu.truth())
