"""Bad configuration is refused with one line naming the thing to fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cgsync.emulator import EmulatorConfig


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"records": -1}, "records must be 0 or more"),
        ({"seed": -3}, "seed must be 0 or more"),
        ({"history_days": 0}, "history_days must be 1 or more"),
        ({"speed": -1.0}, "speed must be 0 or more"),
        ({"timezone": "Europe/Atlantis"}, "timezone 'Europe/Atlantis' is not an IANA"),
        ({"start": datetime(2025, 1, 1)}, "start must be an aware datetime"),
        ({"client_secret": ""}, "client_id and client_secret must not be empty"),
        ({"erasures": 1.5}, "erasures must be a share from 0 to 1, got 1.5"),
        ({"responses_order": "random"}, "responses_order must be answer or record, got 'random'"),
    ],
)
def test_bad_values_name_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmulatorConfig(**changes)


def test_the_start_is_kept_in_utc() -> None:
    start = datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert EmulatorConfig(start=start).start == datetime(2025, 1, 1, 10, tzinfo=UTC)


def test_the_secret_is_not_in_the_repr() -> None:
    assert "s3cret" not in repr(EmulatorConfig(client_secret="s3cret"))
