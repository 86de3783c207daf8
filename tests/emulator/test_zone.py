"""Local times, DST included, against zoneinfo."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from cgsync.emulator._zone import LocalTime

from ._api import NON_RESPONSES, Connect, StartEmulator

AROUND = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "zone",
    ["Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"],
)
def test_formatting_matches_zoneinfo(zone: str) -> None:
    seconds = np.random.default_rng(1).integers(1_600_000_000, 1_800_000_000, 5_000)
    expected = [
        datetime.fromtimestamp(s, UTC).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
        for s in seconds.tolist()
    ]
    assert LocalTime(zone, AROUND).format(seconds) == expected


@pytest.mark.parametrize(
    ("last_utc_second_before", "expected"),
    [
        (
            datetime(2024, 10, 27, 0, 59, 59, tzinfo=UTC),
            ["2024-10-27 02:59:59", "2024-10-27 02:00:00"],
        ),
        (
            datetime(2025, 3, 30, 0, 59, 59, tzinfo=UTC),
            ["2025-03-30 01:59:59", "2025-03-30 03:00:00"],
        ),
    ],
    ids=["autumn repeats an hour", "spring skips an hour"],
)
def test_dst_transitions_to_the_second(
    last_utc_second_before: datetime, expected: list[str]
) -> None:
    before = int(last_utc_second_before.timestamp())
    assert LocalTime("Europe/Amsterdam", AROUND).format(np.array([before, before + 1])) == expected


def test_a_local_day_starts_at_local_midnight() -> None:
    local_time = LocalTime("America/New_York", AROUND)
    assert local_time.day_start(date(2025, 1, 15)) == int(
        datetime(2025, 1, 15, 5, tzinfo=UTC).timestamp()
    )
    assert local_time.day_start(date(2025, 7, 15)) == int(
        datetime(2025, 7, 15, 4, tzinfo=UTC).timestamp()
    )


def test_served_dates_cross_dst_transitions(emulator: StartEmulator, connect: Connect) -> None:
    emu = emulator(records=2_000, history_days=730)
    zone = ZoneInfo(emu.config.timezone)
    sent = emu.truth().date_sent
    offsets = set()
    for record in connect(emu).walk(NON_RESPONSES):
        local = datetime.fromisoformat(record["date_sent"])
        utc = sent[record["number_customergauge"]].replace(tzinfo=None)
        offsets.add(local - utc)
        assert local == sent[record["number_customergauge"]].astimezone(zone).replace(tzinfo=None)
    assert len(offsets) == 2
