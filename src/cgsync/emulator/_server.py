"""Serving the app with uvicorn: in a background thread (tests, demo) or in the foreground (CLI)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from cgsync.emulator import settings
from cgsync.emulator._app import create_app
from cgsync.emulator._clock import SimulatedClock
from cgsync.emulator._config import EmulatorConfig
from cgsync.emulator._faults import Faults
from cgsync.emulator._population import Truth
from cgsync.emulator._state import EmulatorState

_START_TIMEOUT_SECONDS = 30


def _hide_dropped_responses(record: logging.LogRecord) -> bool:
    """A dropped connection is an injected fault, not an error worth a log line."""
    return "without completing response" not in record.getMessage()


class Emulator:
    """A running emulator: its URLs, credentials and a handle on its clock, truth and faults."""

    def __init__(self, state: EmulatorState, base_url: str) -> None:
        self._state = state
        self.base_url = base_url
        self.token_url = base_url + settings.TOKEN_PATH
        self.client_id = state.config.client_id
        self.client_secret = state.config.client_secret
        self.config = state.config

    @property
    def clock(self) -> SimulatedClock:
        return self._state.clock

    @property
    def faults(self) -> Faults:
        return self._state.faults

    def truth(self) -> Truth:
        """Every response and non-response (with its status) at the current clock time."""
        return self._state.truth()

    def rotate_credentials(self, client_id: str, client_secret: str) -> None:
        """Accept only these credentials from now on (a rotated Connected App)."""
        self._state.tokens.rotate(client_id, client_secret)
        self.client_id, self.client_secret = client_id, client_secret

    def issued_tokens(self) -> list[str]:
        """Every access token issued so far (for tests that look for a leaked secret)."""
        return list(self._state.tokens.issued)

    def stats(self) -> dict[str, Any]:
        """Request counts: `token_calls`, `api_calls` and `by_path`."""
        return self._state.stats.snapshot()

    def __repr__(self) -> str:
        return f"Emulator(base_url={self.base_url!r}, records={self.config.records})"


def build_server(state: EmulatorState, log_level: str = "warning") -> uvicorn.Server:
    logging.getLogger("uvicorn.error").addFilter(_hide_dropped_responses)  # added once
    config = uvicorn.Config(
        create_app(state),
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config)


@contextmanager
def start_emulator(config: EmulatorConfig | None = None) -> Iterator[Emulator]:
    """Run an emulator on a free port of 127.0.0.1 in a background thread until the block ends."""
    state = EmulatorState(config or EmulatorConfig())
    server = build_server(state)
    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"cgsync-emulator-{port}", daemon=True
    )
    thread.start()
    try:
        _wait_started(server, thread)
        yield Emulator(state, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn; raises OSError when the address is taken or invalid."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    # proto must say TCP: asyncio only sets TCP_NODELAY on such sockets, and without it every
    # response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    except OSError:
        sock.close()
        raise
    return sock


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    ready = threading.Event()
    for _ in range(_START_TIMEOUT_SECONDS * 100):
        if server.started or not thread.is_alive():
            break
        ready.wait(0.01)
    if not server.started:
        raise RuntimeError("the emulator did not start; see the log above")
