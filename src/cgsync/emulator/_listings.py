"""Which records a page holds: the three listings, their order, cursors and filters.

Positions are where a record sits in a listing's order: the record index for the listings
ordered by key or CGID, the rank in the answer order for v7 responses. A scan walks positions in
chunks and keeps those that pass the listing's condition and the filters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cgsync.emulator import settings
from cgsync.emulator._population import NEVER, Population, Resident, position

_MIN_CHUNK = 1024
_MAX_CHUNK = 1 << 20

# For each period field: its column, and the bounds of (arrival - field) and of
# (answer time - field) in seconds, which turn a period into a range of positions.
_PERIOD_BOUNDS: dict[str, tuple[str, tuple[int, int], tuple[int, int]]] = {
    "date_sent": ("arrival", (0, 0), (0, settings.MAX_RESPONSE_DELAY)),
    "date_creation": (
        "creation",
        (0, settings.MAX_BACKDATE),
        (0, settings.MAX_BACKDATE + settings.MAX_RESPONSE_DELAY),
    ),
    "date_order": (
        "order",
        (0, settings.MAX_BACKDATE + settings.MAX_ORDER_LEAD),
        (0, settings.MAX_BACKDATE + settings.MAX_ORDER_LEAD + settings.MAX_RESPONSE_DELAY),
    ),
    "date_survey_response": ("responded", (-settings.MAX_RESPONSE_DELAY, 0), (0, 0)),
}


@dataclass(frozen=True)
class Period:
    """A period filter: `field` within [low, high) in population seconds."""

    field: str
    low: int
    high: int


@dataclass(frozen=True)
class Filters:
    period: Period | None = None
    index: int | None = None
    """The CGID filter, as a record index."""
    outbound: tuple[str, int] | None = None
    """(resident column, code) of an outbound filter."""


@dataclass(frozen=True)
class Page:
    positions: np.ndarray
    indexes: np.ndarray


Keep = Callable[[np.ndarray], np.ndarray]


class Listings:
    """The pages of the three listings at a clock time."""

    def __init__(self, population: Population, responses_order: str = "answer") -> None:
        self.population = population
        self.responses_order = responses_order

    def non_responses(self, t: int, after: int, per_page: int, filters: Filters) -> Page:
        """Records sent by `t`, not answered by `t`, with index >= `after`, by index."""
        resident = self.population.ensure(t)
        low, high = self._index_range(
            resident, filters, after, self.population.sent_count(resident, t)
        )
        keep = self._keep(resident, filters, lambda idx: resident.responded[idx] > t, t)
        return _scan(lambda a, b: np.arange(a, b), keep, low, high, per_page)

    def responses(self, t: int, after: int, per_page: int, filters: Filters) -> Page:
        """Records answered by `t` with answer rank >= `after`, in answer order (or, in record
        order, with index >= `after`, by index)."""
        resident = self.population.ensure(t)
        if self.responses_order == "record":
            low, high = self._index_range(
                resident, filters, after, self.population.sent_count(resident, t)
            )
            keep = self._keep(resident, filters, lambda idx: resident.responded[idx] <= t, t)
            return _scan(lambda a, b: np.arange(a, b), keep, low, high, per_page)
        times = resident.response_times
        low, high = after, self.population.visible_responses(resident, t)
        if filters.period is not None:
            _, _, (gap_low, gap_high) = _PERIOD_BOUNDS[filters.period.field]
            low = max(low, position(times, filters.period.low + gap_low))
            high = min(high, position(times, filters.period.high + gap_high))
        if filters.index is not None:
            known = 0 <= filters.index < resident.size
            answered = int(resident.responded[filters.index]) if known else NEVER
            # The rank range of its answer time; the keep test below picks the record itself.
            low = max(low, position(times, answered))
            high = min(high, position(times, answered, "right") if answered != NEVER else 0)
        keep = self._keep(resident, filters, None, t)
        return _scan(lambda a, b: resident.response_indexes[a:b], keep, low, high, per_page)

    def responses_by_cgid(self, t: int, after: int, per_page: int, backwards: bool = False) -> Page:
        """Records answered by `t`, by index: from `after` up, or backwards from below `after`."""
        resident = self.population.ensure(t)
        sent = self.population.sent_count(resident, t)
        keep = self._keep(resident, Filters(), lambda idx: resident.responded[idx] <= t, t)
        if backwards:
            return _scan(
                lambda a, b: np.arange(a, b), keep, 0, min(after, sent), per_page, backwards=True
            )
        return _scan(lambda a, b: np.arange(a, b), keep, after, sent, per_page)

    def _index_range(
        self, resident: Resident, filters: Filters, low: int, high: int
    ) -> tuple[int, int]:
        if filters.period is not None:
            _, (gap_low, gap_high), _ = _PERIOD_BOUNDS[filters.period.field]
            low = max(low, position(resident.arrival, filters.period.low + gap_low))
            high = min(high, position(resident.arrival, filters.period.high + gap_high))
        if filters.index is not None:
            low, high = max(low, filters.index), min(high, filters.index + 1)
        return low, high

    def _keep(
        self, resident: Resident, filters: Filters, condition: Keep | None, t: int
    ) -> Keep | None:
        tests: list[Keep] = [] if condition is None else [condition]
        if self.population.erasures:  # erased records are gone from every listing
            tests.append(lambda idx: ~self.population.erased(resident, idx, t))
        if filters.period is not None:
            column = getattr(resident, _PERIOD_BOUNDS[filters.period.field][0])
            period = filters.period
            tests.append(lambda idx: (column[idx] >= period.low) & (column[idx] < period.high))
        if filters.index is not None:
            wanted_index = filters.index
            tests.append(lambda idx: idx == wanted_index)
        if filters.outbound is not None:
            codes = getattr(resident, filters.outbound[0])
            wanted = filters.outbound[1]
            tests.append(lambda idx: codes[idx] == wanted)
        if not tests:
            return None

        def keep(idx: np.ndarray) -> np.ndarray:
            mask = tests[0](idx)
            for test in tests[1:]:
                mask &= test(idx)
            return mask

        return keep


def _scan(
    candidates: Callable[[int, int], np.ndarray],
    keep: Keep | None,
    low: int,
    high: int,
    limit: int,
    backwards: bool = False,
) -> Page:
    """Up to `limit` positions in [low, high) whose records pass `keep`, in walking order."""
    if keep is None:
        low, high = (max(low, high - limit), high) if backwards else (low, min(high, low + limit))
        positions = np.arange(low, max(low, high))
        indexes = candidates(low, high) if high > low else np.empty(0, dtype=np.int64)
        if backwards:
            positions, indexes = positions[::-1], indexes[::-1]
        return Page(positions, np.asarray(indexes, dtype=np.int64))
    found_positions: list[np.ndarray] = []
    found_indexes: list[np.ndarray] = []
    found = 0
    chunk = max(2 * limit, _MIN_CHUNK)
    while low < high and found < limit:
        a, b = (max(low, high - chunk), high) if backwards else (low, min(high, low + chunk))
        indexes = np.asarray(candidates(a, b), dtype=np.int64)
        positions = np.arange(a, b)
        if backwards:
            indexes, positions = indexes[::-1], positions[::-1]
        hits = np.flatnonzero(keep(indexes))[: limit - found]
        found_positions.append(positions[hits])
        found_indexes.append(indexes[hits])
        found += len(hits)
        if backwards:
            high = a
        else:
            low = b
        chunk = min(2 * chunk, _MAX_CHUNK)
    if not found_positions:
        return Page(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    return Page(np.concatenate(found_positions), np.concatenate(found_indexes))
