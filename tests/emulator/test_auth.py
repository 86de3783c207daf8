"""The token endpoint and bearer tokens."""

from __future__ import annotations

import httpx
import pytest
from timing import FakeClock

from cgsync.emulator import Emulator, _auth

from ._api import NON_RESPONSES, Connect, StartEmulator


def credentials(emulator: Emulator) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
    }


def test_credentials_in_the_form_body_get_a_bearer_token(shared_emulator: Emulator) -> None:
    response = httpx.post(shared_emulator.token_url, data=credentials(shared_emulator))
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert len(body["access_token"]) >= 32


def test_credentials_in_the_query_string_are_accepted_too(shared_emulator: Emulator) -> None:
    response = httpx.post(shared_emulator.token_url, params=credentials(shared_emulator))
    assert response.status_code == 200
    assert response.json()["access_token"]


def test_credentials_in_http_basic_auth_are_accepted(shared_emulator: Emulator) -> None:
    response = httpx.post(
        shared_emulator.token_url,
        data={"grant_type": "client_credentials"},
        auth=(shared_emulator.client_id, shared_emulator.client_secret),
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "change",
    [{"client_secret": "wrong"}, {"client_id": "someone-else"}, {"client_secret": ""}],
)
def test_wrong_credentials_get_401_with_a_json_error(
    shared_emulator: Emulator, change: dict[str, str]
) -> None:
    response = httpx.post(shared_emulator.token_url, data=credentials(shared_emulator) | change)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}


def test_missing_credentials_get_401(shared_emulator: Emulator) -> None:
    response = httpx.post(shared_emulator.token_url, data={"grant_type": "client_credentials"})
    assert response.status_code == 401
    assert "access_token" not in response.json()


def test_another_grant_type_gets_400(shared_emulator: Emulator) -> None:
    data = credentials(shared_emulator) | {"grant_type": "password"}
    response = httpx.post(shared_emulator.token_url, data=data)
    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type"}


def test_custom_credentials_replace_the_demo_ones(emulator: StartEmulator) -> None:
    emu = emulator(client_id="acme", client_secret="s3cret")
    assert httpx.post(emu.token_url, data=credentials(emu)).status_code == 200
    demo = {"client_id": "cgsync-demo", "client_secret": "cgsync-demo-secret"}
    assert httpx.post(emu.token_url, data=credentials(emu) | demo).status_code == 401


@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-a-token", "Basic Y2dzeW5jLWRlbW86eA==", "Bearer"]
)
def test_data_requests_without_a_valid_token_get_401_unauthenticated(
    shared_emulator: Emulator, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.get(shared_emulator.base_url + NON_RESPONSES, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthenticated."}


def test_a_token_expires_after_its_lifetime(
    emulator: StartEmulator, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()  # token lifetimes are real seconds: this clock stands in for them
    monkeypatch.setattr(_auth, "monotonic", clock)
    emu = emulator()
    emu.faults.update(token_ttl_seconds=1)
    client = connect(emu)
    assert client.get(NON_RESPONSES).status_code == 200
    clock.now += 0.5
    assert client.get(NON_RESPONSES).status_code == 200
    clock.now += 0.5
    assert client.get(NON_RESPONSES).status_code == 401
    client.token = client.new_token()
    assert client.get(NON_RESPONSES).status_code == 200


def test_expiring_all_tokens_makes_the_next_request_401(
    emulator: StartEmulator, connect: Connect
) -> None:
    emu = emulator()
    client = connect(emu)
    emu.faults.expire_tokens()
    response = client.get(NON_RESPONSES)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthenticated."}


def test_rotated_credentials_replace_the_old_ones_and_their_tokens(
    emulator: StartEmulator,
) -> None:
    emu = emulator(records=10)
    old = credentials(emu)
    token = httpx.post(emu.token_url, data=old).json()["access_token"]

    emu.rotate_credentials("rotated-id", "rotated-secret")

    listing = emu.base_url + NON_RESPONSES
    assert httpx.get(listing, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert httpx.post(emu.token_url, data=old).status_code == 401
    new = httpx.post(emu.token_url, data=credentials(emu))
    assert new.status_code == 200
    fresh = {"Authorization": f"Bearer {new.json()['access_token']}"}
    assert httpx.get(listing, headers=fresh).status_code == 200
