"""`cgsync emulator` on the command line."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime

import httpx
import pytest
from timing import CAP_SECONDS
from typer.testing import CliRunner

from cgsync.cli import app
from cgsync.emulator import EmulatorConfig
from cgsync.emulator.cli import _banner, _iso_instant

from ._api import NON_RESPONSES


def test_it_serves_prints_its_urls_and_stops_cleanly_on_ctrl_c() -> None:
    command = [sys.executable, "-m", "cgsync", "emulator", "--port", "0", "--records", "300"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = "".join(process.stdout.readline() for _ in range(8))
        token_url = re.search(r"token URL\s+(\S+)", banner)
        assert token_url, banner
        assert "cgsync-demo-secret" in banner
        token = httpx.post(
            token_url.group(1),
            data={
                "grant_type": "client_credentials",
                "client_id": "cgsync-demo",
                "client_secret": "cgsync-demo-secret",
            },
            timeout=30,
        ).json()["access_token"]
        base_url = token_url.group(1).removesuffix("/oauth2/token")
        page = httpx.get(
            base_url + NON_RESPONSES,
            params={"per_page": 5},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert len(page.json()["data"]) == 5
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=CAP_SECONDS)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Emulator stopped." in out
    assert "Traceback" not in err


def test_a_secret_of_ones_own_is_not_printed_only_the_demo_default_is() -> None:
    own = EmulatorConfig(client_secret="hunter2-very-secret")
    banner = _banner(own, "http://127.0.0.1:1")
    assert "hunter2" not in banner
    assert "token URL    http://127.0.0.1:1/oauth2/token" in banner
    demo = _banner(EmulatorConfig(), "http://127.0.0.1:1")
    assert "cgsync-demo-secret" in demo


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--timezone", "Mars/Olympus"], "not an IANA time zone name"),
        (["--records", "-1"], "records must be 0 or more"),
        (["--rate-5xx", "1.5"], "rate_5xx must be between 0 and 1"),
        (["--start", "yesterday"], "is not an ISO 8601 date-time"),
    ],
)
def test_bad_options_get_one_clear_line(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["emulator", "--port", "0", *arguments])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(
    "start", ["2026-11-01T08:00:00Z", "2026-11-01T08:00:00+00:00", "2026-11-01T09:00:00+01:00"]
)
def test_the_clock_starts_at_any_iso_form_of_an_instant(start: str) -> None:
    assert _iso_instant(start) == datetime(2026, 11, 1, 8, tzinfo=UTC)


def test_a_taken_port_gets_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["emulator", "--port", str(port), "--records", "10"])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "pick another --port" in result.output
