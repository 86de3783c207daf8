"""OAuth2 client-credentials tokens for the CustomerGauge API, as an `httpx.Auth`."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Generator
from datetime import timedelta

import httpx
import orjson

from cgsync._exceptions import ApiError, AuthenticationError
from cgsync.settings import ENV_AUTH_URL, ENV_CLIENT_ID, ENV_CLIENT_SECRET, TOKEN_RENEW_MARGIN

DEFAULT_EXPIRES_IN = 3600.0


class TokenUnavailable(Exception):
    """The token endpoint failed in a way worth retrying (5xx, 429, dropped, malformed body)."""

    def __init__(self, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class TokenProvider(httpx.Auth):
    """Bearer tokens from `POST {token_url}` with the client credentials in the form body.

    One token is cached and shared by every thread; it is renewed `renew_margin` before it
    expires (at most a tenth of its lifetime), and once when the API answers 401. A second
    401 in a row raises AuthenticationError. `token_calls` counts requests to the token URL.
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        token_url: str,
        http: httpx.Client,
        region: str | None = None,
        renew_margin: timedelta = TOKEN_RENEW_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_url = token_url
        self.region = region
        self.token_calls = 0
        self._http = http
        self._renew_margin = renew_margin.total_seconds()
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def __repr__(self) -> str:
        return (
            f"TokenProvider(client_id={self.client_id!r}, client_secret='***', "
            f"token_url={self.token_url!r})"
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        request.headers["Authorization"] = f"Bearer {self.token(stale=token)}"
        response = yield request
        if response.status_code == 401:
            raise AuthenticationError(
                f"the API at {request.url.host} refused a fresh token for client id "
                f"{self.client_id!r}: check that the connected app may read this system's data"
            )

    def token(self, *, stale: str | None = None) -> str:
        """The cached token, fetched first if there is none, it is due, or it equals `stale`."""
        with self._lock:
            if self._token is None or self._token == stale or self._clock() >= self._renew_at:
                self._token, lifetime = self._fetch()
                self._renew_at = self._clock() + lifetime - min(self._renew_margin, lifetime / 10)
            return self._token

    def _fetch(self) -> tuple[str, float]:
        self.token_calls += 1
        try:
            response = self._http.post(
                self.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self._client_secret,
                },
            )
        except httpx.TransportError as exc:
            refuse_untrusted_certificate(self.token_url, exc)
            raise TokenUnavailable(f"{self.token_url}: {describe_error(exc)}") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise TokenUnavailable(
                f"{self.token_url} answered {status}", response.headers.get("Retry-After")
            )
        if status in (400, 401, 403):
            raise AuthenticationError(
                f"CustomerGauge refused the credentials of client id {self.client_id!r} "
                f"({self._where()}){self._error_code(response)}: "
                f"check {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}"
            )
        if status != 200:
            raise ApiError(
                f"token endpoint {self.token_url} answered {status}: check {ENV_AUTH_URL}"
            )
        try:
            body = orjson.loads(response.content)
            token = body["access_token"]
            lifetime = max(1.0, float(body.get("expires_in") or DEFAULT_EXPIRES_IN))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise TokenUnavailable(f"{self.token_url} sent a malformed body") from None
        if not isinstance(token, str) or not token:
            raise TokenUnavailable(f"{self.token_url} sent an empty access_token")
        return token, lifetime

    def _where(self) -> str:
        return f"region {self.region}, {self.token_url}" if self.region else self.token_url

    def _error_code(self, response: httpx.Response) -> str:
        """The OAuth2 `error` code of a refusal, if the body has one (never echoes the secret)."""
        try:
            code = orjson.loads(response.content).get("error")
        except (orjson.JSONDecodeError, AttributeError):
            return ""
        if not isinstance(code, str) or not code or self._client_secret in code:
            return ""
        return f" [{code[:80]}]"


def refuse_untrusted_certificate(url: str, exc: httpx.TransportError) -> None:
    """Raise ApiError at once if `exc` is a failed TLS certificate check: retrying cannot help."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            raise ApiError(
                f"{url}: the server's TLS certificate is not trusted ({cause.verify_message})"
            ) from None
        cause = cause.__cause__ or cause.__context__


def describe_error(exc: Exception) -> str:
    """A short reason for a failure: its class and message."""
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
