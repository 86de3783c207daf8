"""Injected faults: each data request draws its fate from (seed, request number)."""

from __future__ import annotations

import dataclasses
import enum
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic  # a module global: tests replace it with a clock of their own

from cgsync.emulator import settings

_MASK64 = (1 << 64) - 1


def mix64(*values: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps): deterministic and well spread."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state + (value & _MASK64) * 0xBF58476D1CE4E5B9 + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        state = z ^ (z >> 31)
    return state


@dataclass(frozen=True)
class FaultSettings:
    """How often each fault happens (rates are chances per data request, 0 to 1)."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_drop: float = 0.0
    """Connection dropped in the middle of the body."""
    rate_truncate: float = 0.0
    """A complete 200 whose JSON body is cut short."""
    latency_ms: int = 0
    """Added to every data request."""
    token_ttl_seconds: int = settings.DEFAULT_TOKEN_TTL_SECONDS
    """Lifetime of newly issued tokens, in real seconds."""
    rate_limit: float = 0.0
    """Data requests per real second before answering 429; 0 means no limit."""
    retry_after_seconds: int = 1
    """The Retry-After of an injected 429."""

    def __post_init__(self) -> None:
        rates = {
            f: getattr(self, f) for f in ("rate_429", "rate_5xx", "rate_drop", "rate_truncate")
        }
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")
        if sum(rates.values()) > 1.0:
            raise ValueError("the fault rates must add up to at most 1")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be 0 or more, got {self.latency_ms}")
        if self.token_ttl_seconds < 1:
            raise ValueError(f"token_ttl_seconds must be 1 or more, got {self.token_ttl_seconds}")
        if self.rate_limit < 0:
            raise ValueError(f"rate_limit must be 0 or more, got {self.rate_limit}")
        if self.retry_after_seconds < 0:
            raise ValueError(
                f"retry_after_seconds must be 0 or more, got {self.retry_after_seconds}"
            )

    def as_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


class FaultKind(enum.Enum):
    NONE = "none"
    TOO_MANY_REQUESTS = "429"
    SERVER_ERROR = "5xx"
    DROP = "drop"
    TRUNCATE = "truncate"


@dataclass(frozen=True)
class FaultDecision:
    """What happens to one data request."""

    kind: FaultKind
    status_code: int = 200
    retry_after_seconds: int = 0
    latency_ms: int = 0
    cut_fraction: float = 0.5
    """Where a dropped or truncated body is cut, as a share of its length."""


_SERVER_ERRORS = (500, 502, 503)


class Faults:
    """The live fault settings of one emulator, shared by its app and its handle."""

    def __init__(
        self, seed: int, initial: FaultSettings, expire_tokens: Callable[[], None]
    ) -> None:
        self._seed = seed
        self._settings = initial
        self._expire_tokens = expire_tokens
        self._lock = threading.Lock()
        self._requests = 0
        self._bucket_tokens = float("inf")  # starts full, whatever the limit
        self._bucket_time = monotonic()

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def update(self, **changes: float) -> FaultSettings:
        """Change some settings; unknown names or bad values raise ValueError."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(FaultSettings)}
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        with self._lock:
            self._settings = dataclasses.replace(self._settings, **changes)  # type: ignore[arg-type]
            return self._settings

    def clear(self) -> FaultSettings:
        """Back to no faults, default token lifetime and no rate limit."""
        with self._lock:
            self._settings = FaultSettings()
            return self._settings

    def expire_tokens(self) -> None:
        """Make every token issued so far invalid (the next data request gets 401)."""
        self._expire_tokens()

    def decide(self) -> FaultDecision:
        """Draw the fate of the next data request."""
        with self._lock:
            current = self._settings
            number = self._requests
            self._requests += 1
            limited_for = self._take_rate_token(current.rate_limit)
        if limited_for is not None:
            return FaultDecision(FaultKind.TOO_MANY_REQUESTS, 429, limited_for, current.latency_ms)
        draw = mix64(self._seed, number)
        chance = (draw >> 11) / float(1 << 53)
        detail = draw & 0x7FF
        thresholds = (
            (current.rate_429, FaultKind.TOO_MANY_REQUESTS),
            (current.rate_5xx, FaultKind.SERVER_ERROR),
            (current.rate_drop, FaultKind.DROP),
            (current.rate_truncate, FaultKind.TRUNCATE),
        )
        edge = 0.0
        for rate, kind in thresholds:
            edge += rate
            if chance < edge:
                return FaultDecision(
                    kind,
                    status_code=_status_for(kind, detail),
                    retry_after_seconds=current.retry_after_seconds,
                    latency_ms=current.latency_ms,
                    cut_fraction=0.1 + 0.8 * (detail / 0x7FF),
                )
        return FaultDecision(FaultKind.NONE, latency_ms=current.latency_ms)

    def _take_rate_token(self, rate_limit: float) -> int | None:
        """Token bucket (one second of burst); the seconds to wait when empty, else None."""
        if rate_limit <= 0:
            return None
        now = monotonic()
        elapsed = now - self._bucket_time
        self._bucket_time = now
        self._bucket_tokens = min(rate_limit, self._bucket_tokens + elapsed * rate_limit)
        if self._bucket_tokens >= 1.0:
            self._bucket_tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self._bucket_tokens) / rate_limit))


def _status_for(kind: FaultKind, detail: int) -> int:
    if kind is FaultKind.TOO_MANY_REQUESTS:
        return 429
    if kind is FaultKind.SERVER_ERROR:
        return _SERVER_ERRORS[detail % len(_SERVER_ERRORS)]
    return 200
