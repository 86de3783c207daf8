"""TokenProvider: client credentials in the body, one cached token, renewal, refusals."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs

import httpx
import pytest
from scripted_server import CLIENT_ID, CLIENT_SECRET, Reply, ScriptedServer, connect, page
from timing import FakeClock

from cgsync import AuthenticationError
from cgsync._auth import TokenProvider
from cgsync._endpoints import ENDPOINTS

RESPONSES = ENDPOINTS["responses"]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        server.route(RESPONSES.path, lambda request: page([{"number_customergauge": 1}], 2))
        yield server


def provider(server: ScriptedServer, http: httpx.Client, **options: object) -> TokenProvider:
    return TokenProvider(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_url=server.token_url,
        http=http,
        region="eu",
        **options,  # type: ignore[arg-type]
    )


def test_credentials_travel_in_the_form_body_never_the_url(server: ScriptedServer) -> None:
    with connect(server) as client:
        client.get_page(RESPONSES, cursor=None, per_page=10)

    [token_request] = server.requests_to("/oauth2/token")
    assert token_request.method == "POST"
    assert token_request.raw_query == ""
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.body.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    [api_request] = server.requests_to(RESPONSES.path)
    assert api_request.headers["authorization"] == "Bearer token-1"


def test_one_token_serves_many_pages(server: ScriptedServer) -> None:
    with connect(server) as client:
        for _ in range(5):
            client.get_page(RESPONSES, cursor=None, per_page=10)

        assert client.stats.token_calls == 1
        assert client.stats.api_calls == 5
    assert server.token_calls == 1


def test_token_is_renewed_shortly_before_it_expires(server: ScriptedServer) -> None:
    clock = FakeClock()
    with httpx.Client() as http:
        tokens = provider(server, http, clock=clock, renew_margin=timedelta(seconds=60))
        first = tokens.token()
        clock.now += 3600 - 61
        assert tokens.token() == first
        clock.now += 2
        assert tokens.token() != first
    assert tokens.token_calls == 2


def test_short_lived_tokens_are_not_renewed_on_every_request(server: ScriptedServer) -> None:
    server.route(
        "/oauth2/token", lambda request: Reply(body={"access_token": "short", "expires_in": 30})
    )
    clock = FakeClock()
    with httpx.Client() as http:
        tokens = provider(server, http, clock=clock)
        tokens.token()
        clock.now += 20  # renew margin is capped at a tenth of the lifetime: 3s
        tokens.token()
    assert tokens.token_calls == 1


def test_a_401_renews_the_token_once_and_replays_the_request(server: ScriptedServer) -> None:
    server.script(RESPONSES.path, Reply(401, {"message": "Unauthenticated."}))

    with connect(server) as client:
        result = client.get_page(RESPONSES, cursor=None, per_page=10)

        assert [record["number_customergauge"] for record in result.records] == [1]
        assert client.stats.token_calls == 2
        assert client.stats.api_calls == 2
    authorizations = [r.headers["authorization"] for r in server.requests_to(RESPONSES.path)]
    assert authorizations == ["Bearer token-1", "Bearer token-2"]


def test_a_second_401_is_an_authentication_error(server: ScriptedServer) -> None:
    unauthenticated = Reply(401, {"message": "Unauthenticated."})
    server.script(RESPONSES.path, unauthenticated, unauthenticated)

    with connect(server) as client, pytest.raises(AuthenticationError) as raised:
        client.get_page(RESPONSES, cursor=None, per_page=10)

    assert CLIENT_ID in str(raised.value)
    assert len(server.requests_to(RESPONSES.path)) == 2


@pytest.mark.parametrize("status", [400, 401])
def test_refused_credentials_name_the_client_and_region_not_the_secret(
    server: ScriptedServer, status: int
) -> None:
    server.script("/oauth2/token", Reply(status, {"error": "invalid_client"}))

    with connect(server) as client, pytest.raises(AuthenticationError) as raised:
        client.get_page(RESPONSES, cursor=None, per_page=10)

    message = str(raised.value)
    assert CLIENT_ID in message and "region eu" in message and server.token_url in message
    assert "CUSTOMERGAUGE_CLIENT_SECRET" in message
    assert CLIENT_SECRET not in message
    assert server.requests_to(RESPONSES.path) == []


def test_an_echoed_secret_is_not_repeated(server: ScriptedServer) -> None:
    server.script("/oauth2/token", Reply(401, {"error": f"bad secret {CLIENT_SECRET}"}))

    with connect(server) as client, pytest.raises(AuthenticationError) as raised:
        client.get_page(RESPONSES, cursor=None, per_page=10)

    assert CLIENT_SECRET not in str(raised.value)


def test_a_failing_token_endpoint_is_retried(server: ScriptedServer) -> None:
    server.script("/oauth2/token", Reply(503), Reply(action="drop"), Reply(200, b"{trunc"))

    with connect(server) as client:
        client.get_page(RESPONSES, cursor=None, per_page=10)

        assert client.stats.retries == {"token endpoint": 3}
        assert client.stats.token_calls == 4


def test_threads_share_one_token_and_one_renewal(server: ScriptedServer) -> None:
    barrier = threading.Barrier(8)
    seen: list[str] = []
    with httpx.Client() as http:
        tokens = provider(server, http)

        def use_then_renew() -> None:
            barrier.wait()
            stale = tokens.token()
            barrier.wait()
            seen.append(tokens.token(stale=stale))

        threads = [threading.Thread(target=use_then_renew) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert tokens.token_calls == 2
    assert set(seen) == {"token-2"}


def test_repr_hides_the_secret(server: ScriptedServer) -> None:
    with connect(server) as client:
        assert CLIENT_SECRET not in repr(client)
        assert CLIENT_ID in repr(client)
