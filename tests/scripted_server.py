"""A real HTTP server on 127.0.0.1 that misbehaves on cue, for the HTTP client's tests.

Each path answers from its script of replies first (`server.script(path, ...)`), then from its
route (`server.route(path, handler)`). Replies can also drop the connection, truncate the body
or stall (never answer: the client's timeout is the only clock). Every request is recorded.
"""

from __future__ import annotations

import ssl
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

import orjson

from cgsync._client import ApiClient, RetryPolicy

TOKEN_PATH = "/oauth2/token"


@dataclass
class Reply:
    status: int = 200
    body: Any = b""
    """bytes as is; anything else is sent as JSON."""
    headers: dict[str, str] = field(default_factory=dict)
    action: Literal["reply", "drop", "truncate", "stall"] = "reply"

    def content(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else orjson.dumps(self.body)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]
    body: bytes
    client_port: int


Handler = Callable[[Recorded], Reply]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Say nothing: the tests' clients hang up (timeouts, refused certificates) on purpose."""


def page(records: list[dict[str, Any]], next_cursor: Any) -> Reply:
    return Reply(body={"data": records, "cursor": {"next": next_cursor}})


class ScriptedServer:
    def __init__(self, *, certificate: tuple[Path, Path] | None = None) -> None:
        """`certificate`: (certificate file, key file) to serve HTTPS instead of HTTP."""
        self.requests: list[Recorded] = []
        self.token_calls = 0
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._routes: dict[str, Handler] = {TOKEN_PATH: self._issue_token}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler_class())
        scheme = "http"
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        self.token_url = self.url + TOKEN_PATH

    def script(self, path: str, *replies: Reply) -> None:
        self._scripts[path].extend(replies)

    def route(self, path: str, handler: Handler) -> None:
        self._routes[path] = handler

    def requests_to(self, path: str) -> list[Recorded]:
        return [request for request in self.requests if request.path == path]

    def _issue_token(self, request: Recorded) -> Reply:
        self.token_calls += 1
        return Reply(body={"access_token": f"token-{self.token_calls}", "expires_in": 3600})

    def _answer(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            script = self._scripts[request.path]
            if script:
                return script.popleft()
        handler = self._routes.get(request.path)
        return handler(request) if handler else Reply(404, {"message": "Not Found"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Recorded(
                    method=self.command,
                    path=url.path,
                    query=parse_qs(url.query),
                    raw_query=url.query,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=self.rfile.read(length),
                    client_port=self.client_address[1],
                )
                reply = server._answer(request)
                if reply.action == "stall":
                    server._stopping.wait()
                if reply.action in ("drop", "stall"):
                    self.close_connection = True
                    return
                content = reply.content()
                self.send_response(reply.status)
                for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                    self.send_header(name, value)
                extra = 100 if reply.action == "truncate" else 0
                self.send_header("Content-Length", str(len(content) + extra))
                self.end_headers()
                self.wfile.write(content)
                if reply.action == "truncate":
                    self.close_connection = True

        return Handler

    def __enter__(self) -> Self:
        threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


CLIENT_ID = "acme-sync"
CLIENT_SECRET = "s3cret-Shh-42"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01, max_total=5.0)


def connect(server: ScriptedServer, **options: Any) -> ApiClient:
    """An ApiClient for `server` with fast retries and a short timeout (overridable)."""
    settings: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "auth_url": server.token_url,
        "api_url": server.url,
        "region": "eu",
        "timeout": 2.0,
        "retry": FAST_RETRY,
    }
    return ApiClient(**(settings | options))
