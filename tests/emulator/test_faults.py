"""Injected faults, each deterministic by seed."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from timing import FakeClock

from cgsync.emulator import Emulator, _faults

from ._api import NON_RESPONSES, RESPONSES, ApiClient, Connect, StartEmulator


@pytest.fixture
def emu(emulator: StartEmulator) -> Emulator:
    return emulator(records=500)


@pytest.fixture
def api(emu: Emulator, connect: Connect) -> ApiClient:
    return connect(emu)


def test_an_injected_429_says_when_to_retry(emu: Emulator, api: ApiClient) -> None:
    emu.faults.update(rate_429=1.0, retry_after_seconds=7)
    response = api.get(NON_RESPONSES)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json() == {"message": "Too Many Attempts."}


def test_injected_server_errors_are_500_502_or_503(emu: Emulator, api: ApiClient) -> None:
    emu.faults.update(rate_5xx=1.0)
    statuses = {api.get(RESPONSES).status_code for _ in range(30)}
    assert statuses == {500, 502, 503}


def test_a_dropped_connection_is_a_protocol_error_for_the_client(
    emu: Emulator, api: ApiClient
) -> None:
    emu.faults.update(rate_drop=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        api.get(NON_RESPONSES, per_page=500)
    emu.faults.clear()
    assert api.get(NON_RESPONSES).status_code == 200


def test_a_truncated_body_is_a_200_whose_json_is_cut(emu: Emulator, api: ApiClient) -> None:
    emu.faults.update(rate_truncate=1.0)
    response = api.get(NON_RESPONSES, per_page=200)
    assert response.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_latency_is_added_to_every_data_request(emu: Emulator, api: ApiClient) -> None:
    emu.faults.update(latency_ms=300)
    started = time.monotonic()
    assert api.get(RESPONSES, per_page=1).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_the_rate_limit_answers_429_past_its_requests_per_second(
    emu: Emulator, api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_faults, "monotonic", FakeClock())  # all 8 within the same instant
    emu.faults.update(rate_limit=3)
    responses = [api.get(RESPONSES, per_page=1) for _ in range(8)]
    limited = [r for r in responses if r.status_code == 429]
    assert limited
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert responses[0].status_code == 200


def test_faults_are_the_same_for_the_same_seed(emulator: StartEmulator, connect: Connect) -> None:
    def statuses(seed: int) -> list[int]:
        emu = emulator(records=300, seed=seed)
        emu.faults.update(rate_429=0.2, rate_5xx=0.2, retry_after_seconds=0)
        api = connect(emu)
        return [api.get(RESPONSES, per_page=1).status_code for _ in range(40)]

    first = statuses(seed=5)
    assert first == statuses(seed=5)
    assert first != statuses(seed=6)
    assert {200, 429} <= set(first)


def test_the_token_endpoint_is_not_faulted(emu: Emulator, api: ApiClient) -> None:
    emu.faults.update(rate_5xx=1.0)
    assert api.new_token()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rate_429": 1.5}, "rate_429 must be between 0 and 1"),
        ({"rate_429": 0.6, "rate_5xx": 0.6}, "add up to at most 1"),
        ({"token_ttl_seconds": 0}, "token_ttl_seconds must be 1 or more"),
        ({"rate_timeout": 0.1}, "unknown fault setting"),
    ],
)
def test_bad_fault_settings_are_refused_with_the_name_to_fix(
    emu: Emulator, changes: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        emu.faults.update(**changes)
    assert emu.faults.settings.rate_429 == 0.0
