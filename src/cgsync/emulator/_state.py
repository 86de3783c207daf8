"""Everything one emulator holds in memory, shared by its app, its admin API and its handle."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from cgsync.emulator import settings
from cgsync.emulator._auth import TokenStore
from cgsync.emulator._clock import SimulatedClock
from cgsync.emulator._config import EmulatorConfig
from cgsync.emulator._faults import Faults
from cgsync.emulator._listings import Listings
from cgsync.emulator._population import Population, Truth
from cgsync.emulator._records import RecordRenderer
from cgsync.emulator._variants import vary_records
from cgsync.emulator._zone import LocalTime

_API_PREFIXES = ("/v6/", "/v7/")


class RequestStats:
    """Request counts by path."""

    def __init__(self) -> None:
        self._by_path: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, path: str) -> None:
        with self._lock:
            self._by_path[path] += 1

    def snapshot(self) -> dict[str, Any]:
        """`token_calls`, `api_calls` (the v6 and v7 paths) and `by_path`."""
        with self._lock:
            by_path = dict(self._by_path)
        return {
            "token_calls": by_path.get(settings.TOKEN_PATH, 0),
            "api_calls": sum(n for path, n in by_path.items() if path.startswith(_API_PREFIXES)),
            "by_path": by_path,
        }


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = SimulatedClock(config.start, config.speed)
        self.population = Population(config)
        self.listings = Listings(self.population, config.responses_order)
        self.local_time = LocalTime.of(config.timezone, config.start.date())
        self.renderer = RecordRenderer(self.local_time, self.population.origin)
        self.tokens = TokenStore(config.client_id, config.client_secret)
        self.faults = Faults(config.seed, config.faults, self.tokens.expire_all)
        self.stats = RequestStats()

    def vary(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records as this emulator prints them: plain, or in their variants' forms."""
        if not self.config.value_variants:
            return records
        return vary_records(records, self.local_time.zone, self.config.seed)

    def edited_by(self, t: int) -> int | None:
        """The time whose edits responses show (None: this emulator makes no edits)."""
        return t if self.config.edits else None

    def now(self) -> int:
        """The clock in population seconds."""
        return self.population.relative(self.clock.timestamp())

    def truth(self) -> Truth:
        return self.population.truth(self.now())
