"""ApiClient: query parameters, keep-alive, retries of every transient failure, clear refusals."""

from __future__ import annotations

import gc
import logging
import shutil
import subprocess
import traceback
from collections.abc import Iterator
from pathlib import Path
from socket import socket

import httpx
import pytest
from scripted_server import CLIENT_SECRET, Reply, ScriptedServer, connect, page

from cgsync import ApiError, AuthenticationError, ConfigError
from cgsync._client import ApiClient, RetryPolicy, resolve_urls
from cgsync._endpoints import ENDPOINTS

RESPONSES = ENDPOINTS["responses"]
V6 = ENDPOINTS["responses_v6"]
RECORDS = [{"number_customergauge": 1}, {"number_customergauge": 2}]


def sent(records: list[dict]) -> list[dict]:
    """The fields the API sent: a page read by Arrow has every field, None where absent."""
    return [
        {key: value for key, value in record.items() if value is not None} for record in records
    ]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        server.route(RESPONSES.path, lambda request: page(RECORDS, 2))
        yield server


def test_a_page_carries_its_records_and_cursors(server: ScriptedServer) -> None:
    server.script(V6.path, page(RECORDS, "eyJuIjoxfQ"), page([], None))
    with connect(server) as client:
        first = client.get_page(V6, cursor=None, per_page=400)
        last = client.get_page(V6, cursor="eyJuIjoxfQ", per_page=400)

    assert (sent(first.records), first.cursor, first.next_cursor) == (RECORDS, None, "eyJuIjoxfQ")
    assert first.resume_cursor == "eyJuIjoxfQ"
    assert (last.cursor, last.next_cursor, last.resume_cursor) == ("eyJuIjoxfQ", None, "eyJuIjoxfQ")


def test_a_page_of_known_fields_comes_as_arrow_and_still_reads_as_dicts(
    server: ScriptedServer,
) -> None:
    with connect(server) as client:
        page = client.get_page(RESPONSES, cursor=None, per_page=10)

    assert page.arrow is not None and len(page) == 2
    assert not [value for value in vars(page).values() if isinstance(value, bytes)]  # no body
    assert page.arrow.field("number_customergauge").to_pylist() == [1, 2]
    assert sent(page.records) == RECORDS and page.arrow is None  # the caller may change the dicts
    assert page.records[0]["date_creation"] is None and page.records[0]["tags"] is None


def test_laravels_own_cursor_envelope_is_understood(server: ScriptedServer) -> None:
    laravel = {
        "data": RECORDS,
        "path": "/v6/rest/responses",
        "per_page": 400,
        "next_cursor": "eyJuIjoyfQ",
        "prev_cursor": None,
    }
    server.script(V6.path, Reply(body=laravel), Reply(body=laravel | {"next_cursor": None}))
    with connect(server) as client:
        first = client.get_page(V6, cursor=None, per_page=400)
        last = client.get_page(V6, cursor="eyJuIjoyfQ", per_page=400)

    assert (sent(first.records), first.next_cursor) == (RECORDS, "eyJuIjoyfQ")
    assert last.next_cursor is None and client.stats.total_retries == 0


def test_parameters_reach_the_api(server: ScriptedServer) -> None:
    params = {"with[]": ["tags", "properties"], "period[field]": "date_creation"}
    with connect(server) as client:
        client.get_page(RESPONSES, cursor=None, per_page=1000, params=params)
        client.get_page(RESPONSES, cursor=1234, per_page=5, params=params)

    first, second = (request.query for request in server.requests_to(RESPONSES.path))
    assert first == {
        "with[]": ["tags", "properties"],
        "period[field]": ["date_creation"],
        "per_page": ["1000"],
    }
    assert second["cursor"] == ["1234"] and second["per_page"] == ["5"]


def test_pages_share_one_kept_alive_connection(server: ScriptedServer) -> None:
    with connect(server) as client:
        for _ in range(3):
            client.get_page(RESPONSES, cursor=None, per_page=10)

    assert len({request.client_port for request in server.requests_to(RESPONSES.path)}) == 1


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (Reply(503, {"message": "Service Unavailable"}), "server error"),
        (Reply(500), "server error"),
        (Reply(429, {"message": "Too Many Attempts."}), "rate limited"),
        (Reply(action="drop"), "dropped connection"),
        (Reply(action="truncate", body={"data": [], "cursor": {"next": 1}}), "dropped connection"),
        (Reply(200, b'{"data": [{"number_customergauge": 1}, {"numb'), "malformed body"),
        (Reply(200, b"<html>Bad Gateway</html>"), "malformed body"),
        (Reply(200, {"message": "ok"}), "malformed body"),
        (Reply(200, {"data": [1, 2], "cursor": {"next": 3}}), "malformed body"),
        (Reply(action="stall"), "timeout"),
    ],
)
def test_transient_failures_are_retried_and_logged(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture, failure: Reply, kind: str
) -> None:
    server.script(RESPONSES.path, failure, failure)
    with caplog.at_level(logging.WARNING, logger="cgsync"), connect(server, timeout=1.0) as client:
        result = client.get_page(RESPONSES, cursor=7, per_page=10)

        assert sent(result.records) == RECORDS
        assert client.stats.retries == {kind: 2}
        assert client.stats.api_calls == 3
    retries = [record.getMessage() for record in caplog.records]
    assert len(retries) == 2
    assert "retry 1 of 3" in retries[0] and "retry 2 of 3" in retries[1]
    assert all(RESPONSES.path in message and "cursor 7" in message for message in retries)


def test_retry_after_is_honoured(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    server.script(RESPONSES.path, Reply(429, headers={"Retry-After": "1"}))
    with caplog.at_level(logging.WARNING, logger="cgsync"), connect(server) as client:
        client.get_page(RESPONSES, cursor=None, per_page=10)

    [retry] = caplog.records
    assert "429 Too Many Requests" in retry.getMessage() and "in 1.0s" in retry.getMessage()


def test_a_503_may_say_when_to_come_back(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(RESPONSES.path, Reply(503, headers={"Retry-After": "1"}))
    with caplog.at_level(logging.WARNING, logger="cgsync"), connect(server) as client:
        client.get_page(RESPONSES, cursor=None, per_page=10)

    [retry] = caplog.records
    assert "503 Service Unavailable; retry 1 of 3 in 1.0s" in retry.getMessage()


def test_retry_after_beyond_the_budget_gives_up_at_once(server: ScriptedServer) -> None:
    server.script(RESPONSES.path, Reply(429, headers={"Retry-After": "3600"}))
    with connect(server) as client, pytest.raises(ApiError, match="after 1 attempts: 429"):
        client.get_page(RESPONSES, cursor=None, per_page=10)


def test_after_the_last_attempt_the_error_names_the_url_and_reason(server: ScriptedServer) -> None:
    server.script(RESPONSES.path, *[Reply(502)] * 4)
    with connect(server) as client, pytest.raises(ApiError) as raised:
        client.get_page(RESPONSES, cursor=None, per_page=10)

    assert str(raised.value) == (
        f"{server.url}{RESPONSES.path} failed after 4 attempts: 502 Bad Gateway"
    )
    assert len(server.requests_to(RESPONSES.path)) == 4


def test_an_unreachable_host_is_an_api_error_naming_the_url() -> None:
    with socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{placeholder.getsockname()[1]}"
        nobody = ApiClient(
            client_id="acme",
            client_secret=CLIENT_SECRET,
            auth_url=url + "/oauth2/token",
            api_url=url,
            retry=RetryPolicy(max_attempts=3, base_delay=0.001),
        )
        with nobody as client, pytest.raises(ApiError) as raised:
            client.get_page(RESPONSES, cursor=None, per_page=10)

    assert str(raised.value).startswith(f"{url}{RESPONSES.path} failed after 3 attempts: ")
    assert f"{url}/oauth2/token: ConnectError" in str(raised.value)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    certificate, key = directory / "certificate.pem", directory / "key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subject_and_files = ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(certificate)]
    subprocess.run(request + subject_and_files, check=True, capture_output=True)
    return certificate, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_an_untrusted_certificate_is_refused_without_retrying(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        ScriptedServer(certificate=self_signed_certificate(tmp_path)) as server,
        caplog.at_level(logging.WARNING, logger="cgsync"),
        connect(server) as client,
        pytest.raises(ApiError) as raised,
    ):
        client.get_page(RESPONSES, cursor=None, per_page=10)

    assert str(raised.value).startswith(
        f"{server.token_url}: the server's TLS certificate is not trusted"
    )
    assert caplog.records == [] and server.requests == []


def test_invalid_parameters_are_a_config_error_with_the_api_message(server: ScriptedServer) -> None:
    server.script(
        RESPONSES.path,
        Reply(
            422,
            {
                "message": "The given data was invalid.",
                "errors": {"period.start": ["The period.start is not a valid date."]},
            },
        ),
    )
    with connect(server) as client, pytest.raises(ConfigError) as raised:
        client.get_page(RESPONSES, cursor=None, per_page=10)

    assert "The given data was invalid. period.start: The period.start is not a valid date." in str(
        raised.value
    )
    assert len(server.requests_to(RESPONSES.path)) == 1


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (404, ApiError, "answered 404"),
        (403, AuthenticationError, "acme-sync"),
        (418, ApiError, "418"),
    ],
)
def test_other_refusals_are_not_retried(
    server: ScriptedServer, status: int, error: type[Exception], text: str
) -> None:
    server.script(RESPONSES.path, Reply(status, {"message": "No."}))
    with connect(server) as client, pytest.raises(error, match=text):
        client.get_page(RESPONSES, cursor=None, per_page=10)
    assert len(server.requests_to(RESPONSES.path)) == 1


def test_the_secret_never_shows_in_logs_or_errors(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script("/oauth2/token", Reply(503), Reply(action="drop"))
    server.script(RESPONSES.path, Reply(401), Reply(500), Reply(action="truncate", body=b"{}"))
    server.script(RESPONSES.path, *[Reply(500)] * 4)
    errors: list[str] = []
    with caplog.at_level(logging.DEBUG), connect(server) as client:
        for _ in range(2):
            try:
                client.get_page(RESPONSES, cursor=None, per_page=10)
            except ApiError as exc:
                errors.append("".join(traceback.format_exception(exc)))
        errors.append(repr(client))

    assert len(errors) == 3 and caplog.records
    assert CLIENT_SECRET not in caplog.text
    assert not any(CLIENT_SECRET in text for text in errors)


def test_region_selects_the_hosts() -> None:
    assert resolve_urls("us") == (
        "https://auth.us.customergauge.com/oauth2/token",
        "https://api.us.customergauge.com",
    )
    assert resolve_urls(None) == resolve_urls("eu")
    assert resolve_urls("eu", auth_url="http://127.0.0.1:9/oauth2/token/", api_url="http://x/") == (
        "http://127.0.0.1:9/oauth2/token",
        "http://x",
    )
    with pytest.raises(ConfigError, match="unknown region 'mars'.*use one of eu, us, au"):
        resolve_urls("mars")


def test_a_pages_http_response_is_freed_when_dropped_not_at_the_next_garbage_collection(
    server: ScriptedServer,
) -> None:
    gc.collect()
    gc.disable()
    try:
        with connect(server) as client:
            for _ in range(3):
                client.get_page(RESPONSES, cursor=None, per_page=10)
            alive = [
                o
                for o in gc.get_objects()
                if isinstance(o, httpx.Response) and o.url.path == RESPONSES.path
            ]
    finally:
        gc.enable()

    assert alive == []  # each held its page's body (about 1 MB in a real sync)
