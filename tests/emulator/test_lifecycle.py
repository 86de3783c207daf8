"""As the clock moves, records are answered, fail, progress and arrive (some backdated)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from timing import wait_until

from cgsync.emulator import Emulator, settings

from ._api import NON_RESPONSES, RESPONSES, Connect, StartEmulator, cgids

STATUS_RANK = {settings.STATUS_SENT: 0, settings.STATUS_OPENED: 1, settings.STATUS_CLICKED: 2}


@pytest.fixture
def busy(emulator: StartEmulator) -> Emulator:
    """2,000 invitations over 20 days: about 100 a day, so a few days bring plenty of change."""
    return emulator(records=2_000, seed=3, history_days=20)


def test_answered_records_leave_non_responses_and_join_responses(
    busy: Emulator, connect: Connect
) -> None:
    api = connect(busy)
    before = set(cgids(api.walk(NON_RESPONSES)))
    busy.clock.advance(timedelta(days=3))
    after_non_responses = set(cgids(api.walk(NON_RESPONSES)))
    after_responses = set(cgids(api.walk(RESPONSES)))
    answered = before - after_non_responses
    assert len(answered) > 20
    assert answered <= after_responses
    assert after_responses == busy.truth().responses
    assert after_non_responses == set(busy.truth().non_responses)


def test_a_stored_cursor_brings_exactly_what_was_answered_since(
    busy: Emulator, connect: Connect
) -> None:
    api = connect(busy)
    first = api.page(RESPONSES, per_page=1000)
    while (more := api.page(RESPONSES, per_page=1000, cursor=first["cursor"]["next"]))["data"]:
        first = more
    cursor = first["cursor"]["next"]
    responses_before = busy.truth().responses
    busy.clock.advance(timedelta(days=2))
    new = api.walk(RESPONSES, cursor=cursor)
    assert set(cgids(new)) == busy.truth().responses - responses_before
    # Late answers to old invitations are at the tail too: CGIDs are not in ascending order.
    assert cgids(new) != sorted(cgids(new))


def test_failures_appear_within_48_hours_of_sending(busy: Emulator) -> None:
    before = busy.truth()
    busy.clock.advance(timedelta(days=2))
    after = busy.truth()
    failures = {
        cgid
        for cgid, status in after.non_responses.items()
        if status in settings.FAILURE_STATUSES
        and before.non_responses.get(cgid) not in settings.FAILURE_STATUSES
    }
    assert failures
    # A failure comes at most 48 h after sending, so these were sent at most 2 days + 48 h ago.
    for cgid in failures:
        assert busy.clock.now() - after.date_sent[cgid] <= timedelta(days=4)
    assert not failures & after.responses


def test_statuses_only_move_forward(busy: Emulator) -> None:
    before = busy.truth().non_responses
    busy.clock.advance(timedelta(hours=12))
    after = busy.truth().non_responses
    moved = 0
    for cgid, status in after.items():
        if cgid in before and status in STATUS_RANK and before[cgid] in STATUS_RANK:
            assert STATUS_RANK[status] >= STATUS_RANK[before[cgid]]
            moved += STATUS_RANK[status] > STATUS_RANK[before[cgid]]
        elif before.get(cgid) in settings.FAILURE_STATUSES:
            assert status == before[cgid]
    assert moved > 0


def test_new_invitations_arrive_at_the_tail_some_backdated(
    busy: Emulator, connect: Connect
) -> None:
    api = connect(busy)
    old = api.walk(NON_RESPONSES)
    was = busy.clock.now()
    busy.clock.advance(timedelta(days=10))
    new = [r for r in api.walk(NON_RESPONSES) if r["number_customergauge"] > cgids(old)[-1]]
    assert len(new) > 500
    zone = ZoneInfo(busy.config.timezone)
    created = [datetime.fromisoformat(r["date_creation"]).replace(tzinfo=zone) for r in new]
    backdated = [moment for moment in created if moment < was - timedelta(days=1)]
    assert 0 < len(backdated) < len(new) * 0.1


def test_the_clock_only_moves_forward(busy: Emulator) -> None:
    with pytest.raises(ValueError, match="forward"):
        busy.clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="forward"):
        busy.clock.set(busy.clock.now() - timedelta(days=1))


def test_an_accelerated_clock_runs_on_its_own(emulator: StartEmulator) -> None:
    emu = emulator(speed=36_000)
    start = emu.clock.now()
    answered = len(emu.truth().responses)

    def ran_two_hours() -> bool:
        return emu.clock.now() - start >= timedelta(hours=2)

    wait_until(ran_two_hours, what="the clock to run two hours on its own (0.2 s at its speed)")
    assert emu.clock.now() - start >= timedelta(hours=2)
    assert len(emu.truth().responses) >= answered


def test_the_clock_can_run_past_every_generated_record(emulator: StartEmulator) -> None:
    emu = emulator(records=150_000, history_days=2)
    emu.clock.advance(timedelta(days=3))
    truth = emu.truth()
    assert len(truth.date_sent) > 300_000
    assert max(truth.date_sent.values()) <= emu.clock.now()
