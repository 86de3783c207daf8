"""The simulated clock: tests advance it, or it runs on its own at a chosen speed."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class SimulatedClock:
    """Simulated UTC time; it never runs backwards."""

    def __init__(self, start: datetime, speed: float = 0.0) -> None:
        self._start = start.astimezone(UTC)
        self._speed = speed
        self._lock = threading.Lock()
        self._advanced = 0.0
        self._real_start = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        """The simulated time (aware, UTC), to the second."""
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def timestamp(self) -> int:
        """The simulated time in whole Unix seconds."""
        with self._lock:
            return int(self._start.timestamp() + self._advanced + self._elapsed_scaled())

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward; returns the new time."""
        seconds = delta.total_seconds()
        if seconds < 0:
            raise ValueError(f"the clock only moves forward; got a negative advance of {delta}")
        with self._lock:
            self._advanced += seconds
        return self.now()

    def set(self, moment: datetime) -> datetime:
        """Move the clock forward to `moment` (aware); returns the new time."""
        if moment.tzinfo is None:
            raise ValueError("the clock needs an aware datetime (give it a time zone)")
        return self.advance(timedelta(seconds=moment.timestamp() - self.timestamp()))

    def _elapsed_scaled(self) -> float:
        return (time.monotonic() - self._real_start) * self._speed if self._speed else 0.0
