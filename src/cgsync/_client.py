"""The HTTP client: one keep-alive `httpx.Client`, bearer tokens, bounded retries, parsed pages."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from types import TracebackType
from typing import Any, Self

import httpx
import orjson
import pyarrow as pa

from cgsync._arrow import Records, read_page
from cgsync._auth import (
    TokenProvider,
    TokenUnavailable,
    describe_error,
    refuse_untrusted_certificate,
)
from cgsync._endpoints import Endpoint
from cgsync._exceptions import (
    ApiError,
    AuthenticationError,
    ConfigError,
    ParametersRefusedError,
)
from cgsync._logs import log_event
from cgsync.settings import (
    API_URL_TEMPLATE,
    AUTH_URL_TEMPLATE,
    CURSOR_PARAM,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_REGION,
    DEFAULT_TIMEOUT,
    ENV_API_URL,
    ENV_REGION,
    PER_PAGE_PARAM,
    REGIONS,
    RETRY_BASE_DELAY,
    RETRY_MAX_ATTEMPTS,
    RETRY_MAX_DELAY,
    RETRY_MAX_TOTAL,
)

USER_AGENT = f"cgsync/{version('cgsync')}"

Cursor = int | str
QueryParams = Mapping[str, str | Sequence[str]]

_RATE_LIMITED = "rate limited"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by total seconds."""

    max_attempts: int = RETRY_MAX_ATTEMPTS
    base_delay: float = RETRY_BASE_DELAY
    max_delay: float = RETRY_MAX_DELAY
    max_total: float = RETRY_MAX_TOTAL

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return retry_after
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of the client's counters."""

    api_calls: int = 0
    """Requests sent to the API, retries and 401 replays included."""
    token_calls: int = 0
    retries: Mapping[str, int] = field(default_factory=dict)
    """Retries by kind of failure."""

    @property
    def total_retries(self) -> int:
        return sum(self.retries.values())


class Page:
    """One page of a sync endpoint: its records and cursors.

    A page the client parsed with Arrow (`read_page`) holds its records as `arrow` only, not
    the body (about 1 MB a page, and up to 16 pages are read ahead). `records` turns them into
    dicts on first use, with every field of the record kind (None where the API left it out),
    and drops `arrow`, since the caller may change those dicts.
    """

    def __init__(
        self,
        records: list[dict[str, Any]] | None = None,
        cursor: Cursor | None = None,
        next_cursor: Cursor | None = None,
        *,
        arrow: pa.StructArray | None = None,
    ) -> None:
        if (records is None) == (arrow is None):
            raise ValueError("a page has either records or arrow")
        self.cursor = cursor
        """The cursor that fetched this page (None: the first page)."""
        self.next_cursor = next_cursor
        """`cursor.next` as returned (v6: None on the last page)."""
        self.arrow = arrow
        self._records = records

    def __repr__(self) -> str:
        return f"Page(cursor={self.cursor!r}, next_cursor={self.next_cursor!r}, size={len(self)})"

    def __len__(self) -> int:
        return len(self.arrow) if self.arrow is not None else len(self.records)

    @property
    def records(self) -> list[dict[str, Any]]:
        if self._records is None:
            assert self.arrow is not None
            self._records = self.arrow.to_pylist()
            self.arrow = None
        return self._records

    @property
    def data(self) -> Records:
        """The records in the cheapest form at hand, for `records_to_arrow`."""
        return self.arrow if self.arrow is not None else self.records

    @property
    def resume_cursor(self) -> Cursor | None:
        """The cursor to store once this page is in the lake: the next one, else this one."""
        return self.next_cursor if self.next_cursor is not None else self.cursor


class _Retryable(Exception):
    """A failed attempt worth another: its kind (for the stats), reason and Retry-After."""

    def __init__(self, kind: str, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.retry_after = retry_after


def resolve_urls(
    region: str | None = None, *, auth_url: str | None = None, api_url: str | None = None
) -> tuple[str, str]:
    """The token URL and API base for a region, unless overridden (the emulator, a proxy)."""
    region = (region or DEFAULT_REGION).strip().lower()
    if region not in REGIONS and not (auth_url and api_url):
        raise ConfigError(
            f"unknown region {region!r} (--region or {ENV_REGION}): use one of {', '.join(REGIONS)}"
        )
    return (
        (auth_url or AUTH_URL_TEMPLATE.format(region=region)).rstrip("/"),
        (api_url or API_URL_TEMPLATE.format(region=region)).rstrip("/"),
    )


class ApiClient:
    """A CustomerGauge API client for the sync endpoints; use it as a context manager.

    Thread-safe: pages may be fetched from several threads; they share the connection pool
    and the token. Transient failures are retried per `retry` and logged on the "cgsync"
    logger; when the bound is reached, ApiError names the URL and the last reason.
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        auth_url: str,
        api_url: str,
        region: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.retry = retry
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, DEFAULT_CONNECT_TIMEOUT)),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            transport=transport,
            verify=True,  # never switched off: the credentials travel in these requests
            event_hooks={"request": [self._count_request]},
        )
        self._auth = TokenProvider(
            client_id=client_id,
            client_secret=client_secret,
            token_url=auth_url,
            http=self._http,
            region=region,
        )
        self._token_url = httpx.URL(auth_url)
        self._lock = threading.Lock()
        self._not_before = 0.0
        """Monotonic time before which no thread sends a request: a 429 holds back them all."""
        self._api_calls = 0
        self._retries: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"ApiClient(api_url={self.api_url!r}, auth={self._auth!r})"

    @property
    def client_id(self) -> str:
        """The Connected App's client id (not a secret; the lake records it)."""
        return self._auth.client_id

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def stats(self) -> ClientStats:
        with self._lock:
            return ClientStats(
                api_calls=self._api_calls,
                token_calls=self._auth.token_calls,
                retries=dict(self._retries),
            )

    def get_page(
        self,
        endpoint: Endpoint,
        *,
        cursor: Cursor | None,
        per_page: int,
        params: QueryParams | None = None,
    ) -> Page:
        """Fetch the page of `endpoint` at `cursor` (None: the first page), retrying failures.

        `per_page` is sent as given: the source checks it against the endpoint's limit."""
        query: dict[str, str | Sequence[str]] = {**(params or {}), PER_PAGE_PARAM: str(per_page)}
        if cursor is not None:
            query[CURSOR_PARAM] = str(cursor)
        url = self.api_url + endpoint.path
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self._wait_for_rate_limit()
            try:
                return self._fetch_page(url, query, cursor, endpoint.record_kind)
            except _Retryable as failure:
                last = failure
            delay = self.retry.delay(attempt, _seconds(last.retry_after))
            if (
                attempt >= self.retry.max_attempts
                or time.monotonic() - started + delay > self.retry.max_total
            ):
                raise ApiError(f"{url} failed after {attempt} attempts: {last.reason}")
            with self._lock:
                self._retries[last.kind] += 1
                if last.kind == _RATE_LIMITED:
                    self._not_before = max(self._not_before, time.monotonic() + delay)
            log_event(
                "retry",
                "%s (cursor %s): %s; retry %d of %d in %.1fs",
                endpoint.path,
                cursor,
                last.reason,
                attempt,
                self.retry.max_attempts - 1,
                delay,
                level=logging.WARNING,
                path=endpoint.path,
                cursor=cursor,
                kind=last.kind,
                reason=last.reason,
                retry=attempt,
                retries_allowed=self.retry.max_attempts - 1,
                delay_seconds=round(delay, 3),
            )
            time.sleep(delay)

    def _wait_for_rate_limit(self) -> None:
        """Sleep while a 429 seen by any thread holds the client back."""
        with self._lock:
            wait = self._not_before - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def _fetch_page(
        self, url: str, query: QueryParams, cursor: Cursor | None, record_kind: str
    ) -> Page:
        try:
            response = self._http.get(url, params=query, auth=self._auth)
        except TokenUnavailable as exc:
            raise _Retryable("token endpoint", exc.reason, exc.retry_after) from None
        except httpx.TimeoutException as exc:
            raise _Retryable("timeout", describe_error(exc)) from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise _Retryable("dropped connection", describe_error(exc)) from None
        except httpx.TransportError as exc:
            refuse_untrusted_certificate(url, exc)
            raise _Retryable("connection", describe_error(exc)) from None
        # httpx's response and its stream refer to each other; unbound, a page's body (about
        # 1 MB) is freed as soon as it is dropped instead of at the next garbage collection.
        response.stream = httpx.ByteStream(b"")
        status = response.status_code
        if status == 429:
            retry_after = response.headers.get("Retry-After")
            raise _Retryable(_RATE_LIMITED, "429 Too Many Requests", retry_after)
        if status >= 500:
            reason = f"{status} {response.reason_phrase}".strip()
            raise _Retryable("server error", reason, response.headers.get("Retry-After"))
        if status != 200:
            raise self._refusal(url, response)
        # Arrow reads a page of known fields (and lets go of the GIL); the rest is read below.
        parsed = read_page(response.content, record_kind)
        if parsed is not None:
            records, next_cursor = parsed
            return Page(arrow=records, cursor=cursor, next_cursor=next_cursor)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            size = len(response.content)
            raise _Retryable("malformed body", f"non-JSON body ({size} bytes)") from None
        if not isinstance(body, dict):
            raise _Retryable("malformed body", "body without a data list and a cursor")
        data = body.get("data")
        cursors = body.get("cursor")
        if not isinstance(cursors, dict) and "next_cursor" in body:
            cursors = {"next": body["next_cursor"]}  # Laravel's own cursor envelope (v6)
        if (
            not isinstance(data, list)
            or not isinstance(cursors, dict)
            or "next" not in cursors
            or not set(map(type, data)) <= {dict}
        ):
            raise _Retryable("malformed body", "body without a data list and a cursor")
        return Page(records=data, cursor=cursor, next_cursor=cursors["next"])

    def _refusal(self, url: str, response: httpx.Response) -> Exception:
        """The error for a 4xx answer that retrying cannot fix."""
        status = response.status_code
        message = _api_message(response)
        if status in (400, 422):
            return ParametersRefusedError(
                f"the API refused the parameters of {url} ({status}): {message}"
            )
        if status == 403:
            return AuthenticationError(
                f"the API refused client id {self._auth.client_id!r} access to {url} (403): {message}"
            )
        if status == 404:
            return ApiError(f"{url} answered 404 ({message}): check {ENV_API_URL}")
        return ApiError(f"{url} answered {status}: {message}")

    def _count_request(self, request: httpx.Request) -> None:
        # An event hook sees the 401 replays of the auth flow too; the token URL is not the API.
        if request.url.path == self._token_url.path and request.url.host == self._token_url.host:
            return
        with self._lock:
            self._api_calls += 1


def _seconds(retry_after: str | None) -> float | None:
    """Seconds from a Retry-After header in delta-seconds form (dates are treated as absent)."""
    if retry_after is None:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        return None


def _api_message(response: httpx.Response) -> str:
    """The `message` (and `errors`) of an API error body, shortened to one line."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return response.reason_phrase or "no message"
    message = str(body.get("message") or response.reason_phrase or "no message")
    errors = body.get("errors")
    if isinstance(errors, dict):
        details = "; ".join(
            f"{name}: {', '.join(map(str, problems)) if isinstance(problems, list) else problems}"
            for name, problems in errors.items()
        )
        message = f"{message} {details}"
    return " ".join(message.split())[:300]
