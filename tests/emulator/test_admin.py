"""The admin API mirrors the in-process handle."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from cgsync.emulator import Emulator

from ._api import NON_RESPONSES, Connect, StartEmulator


@pytest.fixture
def emu(emulator: StartEmulator) -> Emulator:
    return emulator(records=800, seed=2)


def admin(emu: Emulator, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, f"{emu.base_url}/_admin/{path}", **kwargs)  # type: ignore[arg-type]


def test_the_clock_reads_and_advances(emu: Emulator) -> None:
    start = emu.clock.now()
    assert admin(emu, "GET", "clock").json() == {"now": start.isoformat(), "speed": 0.0}
    moved = admin(emu, "POST", "clock", json={"advance_seconds": 7200}).json()
    assert datetime.fromisoformat(moved["now"]) == start + timedelta(hours=2)
    assert emu.clock.now() == start + timedelta(hours=2)
    target = start + timedelta(days=1)
    assert admin(emu, "POST", "clock", json={"now": target.isoformat()}).status_code == 200
    assert emu.clock.now() == target


@pytest.mark.parametrize(
    "body", [{"advance_seconds": -5}, {"now": "yesterday"}, {}, [1, 2], {"advance_seconds": "x"}]
)
def test_a_bad_clock_move_is_422(emu: Emulator, body: object) -> None:
    response = admin(emu, "POST", "clock", json=body)
    assert response.status_code == 422
    assert response.json()["message"]


def test_the_truth_is_the_handles_truth(emu: Emulator) -> None:
    body = admin(emu, "GET", "truth").json()
    truth = emu.truth()
    assert body["responses"] == sorted(truth.responses)
    assert {int(k): v for k, v in body["non_responses"].items()} == truth.non_responses
    assert {int(k): datetime.fromisoformat(v) for k, v in body["date_sent"].items()} == (
        truth.date_sent
    )


def test_faults_are_read_set_and_cleared(emu: Emulator) -> None:
    assert admin(emu, "GET", "faults").json()["rate_429"] == 0.0
    updated = admin(emu, "PUT", "faults", json={"rate_5xx": 0.25, "latency_ms": 5}).json()
    assert (updated["rate_5xx"], updated["latency_ms"]) == (0.25, 5)
    assert emu.faults.settings.rate_5xx == 0.25
    assert admin(emu, "DELETE", "faults").json()["rate_5xx"] == 0.0
    assert emu.faults.settings.latency_ms == 0


def test_bad_faults_are_422_with_the_name_to_fix(emu: Emulator) -> None:
    response = admin(emu, "PUT", "faults", json={"rate_drop": 2})
    assert response.status_code == 422
    assert "rate_drop" in response.json()["message"]


def test_tokens_can_be_expired(emu: Emulator, connect: Connect) -> None:
    api = connect(emu)
    assert admin(emu, "POST", "tokens/expire").status_code == 200
    assert api.get(NON_RESPONSES).status_code == 401


def test_stats_count_token_and_api_calls(emu: Emulator, connect: Connect) -> None:
    api = connect(emu)
    api.get(NON_RESPONSES)
    api.get(NON_RESPONSES)
    api.get("/v6/responses")
    stats = admin(emu, "GET", "stats").json()
    assert stats == emu.stats()
    assert stats["token_calls"] == 1
    assert stats["api_calls"] == 3
    assert stats["by_path"][NON_RESPONSES] == 2


def test_the_admin_api_is_not_in_the_public_schema(emu: Emulator) -> None:
    paths = httpx.get(emu.base_url + "/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/_admin")]
    assert NON_RESPONSES in paths
