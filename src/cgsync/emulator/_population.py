"""The survey records: every record's whole life is drawn once from the seed.

Record `index` (0-based; its internal key is index + 1) has a fixed fate: when it is sent, when it
was created and ordered, whether and when it is opened, clicked, answered or fails. What the API
shows at clock time T is a pure function of these and T, so the only mutable state is the clock.

Records are drawn in blocks of `BLOCK_SIZE` keys, each block from `default_rng([seed, block, n])`,
so any number of them is reproducible. Two streams per block:

- stream 0, *resident*: the columns that listings and filters need for every record (times as
  int32 seconds since `origin`, two segment codes), kept in memory for all generated records;
- stream 1, *detail*: everything else a served record needs (names, nps, open/click/failure
  times, ...), drawn again when a page needs it and kept in a small cache.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from cgsync.emulator import settings
from cgsync.emulator._config import EmulatorConfig

B = settings.BLOCK_SIZE
NEVER = np.iinfo(np.int32).max
"""The time of something that never happens."""
_ORIGIN_MARGIN_DAYS = 90
_DETAIL_CACHE_BLOCKS = 16
# Quantiles of the answer delay (log-normal around a day, 10 minutes to MAX_RESPONSE_DELAY): a
# uniform picks one, which is much cheaper than drawing the log-normal itself.
_RESPONSE_DELAYS = np.sort(
    np.clip(
        np.random.default_rng(0).lognormal(math.log(settings.DAY), 1.4, 1 << 16),
        600,
        settings.MAX_RESPONSE_DELAY,
    )
)


@dataclass(frozen=True)
class Resident:
    """The columns kept for every generated record; a snapshot, replaced whole on growth."""

    arrival: np.ndarray
    """int32 send time; non-decreasing in the index, so "sent by T" is a prefix."""
    creation: np.ndarray
    order: np.ndarray
    responded: np.ndarray
    """int32 answer time, NEVER for records that never answer."""
    country: np.ndarray
    """int8 index into settings.COUNTRIES, -1 when the record lacks the field."""
    touchpoint: np.ndarray
    response_indexes: np.ndarray
    """Indexes of all answering records by (answer time, index): the v7 response order."""
    response_times: np.ndarray
    """Answer times in that order (sorted)."""

    @property
    def size(self) -> int:
        return len(self.arrival)


@dataclass(frozen=True)
class Truth:
    """What the API holds at one moment."""

    responses: frozenset[int]
    """CGIDs of every response."""
    non_responses: dict[int, str]
    """CGID -> current status of every non-response (failures included)."""
    date_sent: dict[int, datetime]
    """CGID -> send time (UTC) of every invitation sent so far."""


class Population:
    """All records of one emulator, generated lazily as the clock needs them."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.seed = config.seed
        self.erasures = config.erasures
        start = int(config.start.timestamp())
        history = config.history_days * settings.DAY
        self.origin = start - history - _ORIGIN_MARGIN_DAYS * settings.DAY
        """Unix second that the int32 times count from."""
        self._spacing = history / max(config.records, 1)
        incident_start, incident_end = config.incident_period()
        self.incident = (
            self.relative(int(incident_start.timestamp())),
            self.relative(int(incident_end.timestamp())),
        )
        """The incident month in population time: [start, end)."""
        self._first_arrival = start - self.origin - config.records * self._spacing
        self._lock = threading.Lock()
        self._detail_block = functools.lru_cache(maxsize=_DETAIL_CACHE_BLOCKS)(self._draw_detail)
        initial_blocks = config.records // B + 1
        self._storage = _Storage(reserve=2 * initial_blocks + 16)
        self.resident = self._grow(initial_blocks)

    # -- time ---------------------------------------------------------------------------------

    def relative(self, unix_seconds: int) -> int:
        """A Unix second as a population time, clipped to the int32 range."""
        return int(min(max(unix_seconds - self.origin, -NEVER), NEVER))

    def ensure(self, t: int) -> Resident:
        """The resident columns, grown until every record sent by time `t` exists."""
        resident = self.resident
        if t < resident.arrival[-1]:
            return resident
        with self._lock:
            resident = self.resident
            if t < resident.arrival[-1]:  # another thread grew it meanwhile
                return resident
            missing = (t - int(resident.arrival[-1])) / self._spacing
            self.resident = self._grow(math.ceil(missing / B) + 1)
            return self.resident

    # -- queries ------------------------------------------------------------------------------

    def sent_count(self, resident: Resident, t: int) -> int:
        return position(resident.arrival, t, "right")

    def visible_responses(self, resident: Resident, t: int) -> int:
        return position(resident.response_times, t, "right")

    def columns(self, resident: Resident, indexes: np.ndarray) -> dict[str, np.ndarray]:
        """Every column of the given records, in the given order."""
        out = {
            "index": indexes,
            "arrival": resident.arrival[indexes],
            "creation": resident.creation[indexes],
            "order": resident.order[indexes],
            "responded": resident.responded[indexes],
            "country": resident.country[indexes],
            "touchpoint": resident.touchpoint[indexes],
        }
        blocks = indexes // B
        unique = np.unique(blocks) if len(indexes) else np.zeros(1, dtype=np.int64)
        for block in unique.tolist():
            detail = self._detail_block(block)
            if len(unique) == 1:
                offsets = indexes - block * B
                out.update({name: column[offsets] for name, column in detail.items()})
                break
            selected = blocks == block
            offsets = indexes[selected] - block * B
            for name, column in detail.items():
                if name not in out:
                    out[name] = np.empty((len(indexes), *column.shape[1:]), dtype=column.dtype)
                out[name][selected] = column[offsets]
        return out

    def statuses(self, columns: dict[str, np.ndarray], t: int) -> np.ndarray:
        """Status code (index into settings.STATUSES) of non-responses at time `t`."""
        first_failure = settings.STATUSES.index(settings.FAILURE_STATUSES[0])
        return np.where(
            columns["failed"] <= t,
            first_failure + columns["failure"],
            np.where(columns["clicked"] <= t, 2, np.where(columns["opened"] <= t, 1, 0)),
        )

    def erased(self, resident: Resident, indexes: np.ndarray, t: int) -> np.ndarray:
        """Which of the records at `indexes` are erased at the source by time `t`."""
        if not self.erasures:
            return np.zeros(len(indexes), dtype=bool)
        picked = (indexes * 2_654_435_761 + self.seed * 97) % 10_000 < self.erasures * 10_000
        return picked & (resident.arrival[indexes] + settings.ERASE_AFTER <= t)

    def truth(self, t: int) -> Truth:
        resident = self.ensure(t)
        sent = self.sent_count(resident, t)
        indexes = np.arange(sent)
        indexes = indexes[~self.erased(resident, indexes, t)]
        answered = resident.responded[indexes] <= t
        cgids = indexes + (settings.CGID_OFFSET + 1)
        open_indexes = indexes[~answered]
        statuses = [
            settings.STATUSES[code]
            for code in self.statuses(self.columns(resident, open_indexes), t).tolist()
        ]
        sent_at = (resident.arrival[indexes].astype(np.int64) + self.origin).tolist()
        return Truth(
            responses=frozenset(cgids[answered].tolist()),
            non_responses=dict(zip(cgids[~answered].tolist(), statuses, strict=True)),
            date_sent={
                cgid: datetime.fromtimestamp(second, UTC)
                for cgid, second in zip(cgids.tolist(), sent_at, strict=True)
            },
        )

    # -- generation ---------------------------------------------------------------------------

    def _grow(self, blocks: int) -> Resident:
        previous = self.resident if self._storage.size else None
        first = self._storage.size // B
        for block in range(first, first + blocks):
            self._storage.append(self._draw_resident(block))
        return self._storage.snapshot(previous)

    def _draw_resident(self, block: int) -> dict[str, np.ndarray]:
        # One matrix of uniforms, a row per use: the cheapest way to draw at start-up.
        u = np.random.default_rng([self.seed, block, 0]).random((10, B))
        index = np.arange(block * B, (block + 1) * B, dtype=np.float64)
        arrival = np.floor(self._first_arrival + (index + u[0]) * self._spacing)
        backdate = np.where(
            u[1] < settings.LATE_RATE,
            settings.DAY + u[2] * (settings.MAX_BACKDATE - settings.DAY),
            u[2] * 600,
        )
        creation = np.floor(arrival - backdate)
        order = np.floor(creation - u[3] * settings.MAX_ORDER_LEAD)
        delay = _RESPONSE_DELAYS[(u[5] * len(_RESPONSE_DELAYS)).astype(np.intp)]
        touchpoint = _segment_codes(u[8], u[9], settings.TOUCHPOINT_WEIGHTS)
        # Code -1 (the record has no touchpoint) takes the None entry.
        rate = _TOUCHPOINT_RESPONSE_RATES[touchpoint] * self._seasonal_factors(arrival)
        responded = np.where(u[4] < rate, np.floor(arrival + delay), NEVER)
        return {
            "arrival": _int32(arrival),
            "creation": _int32(creation),
            "order": _int32(order),
            "responded": _int32(responded),
            "country": _segment_codes(u[6], u[7], settings.COUNTRY_WEIGHTS),
            "touchpoint": touchpoint,
        }

    def _seasonal_factors(self, arrival: np.ndarray) -> np.ndarray:
        """The seasonal response factor of each send time. A block spans few days and its send
        times ascend, so each day's factor is found once and spread by a search."""
        first = int((arrival[0] + self.origin) // settings.DAY)
        last = int((arrival[-1] + self.origin) // settings.DAY)
        span = np.arange(first, last + 1).astype("datetime64[D]")
        day_of_year = np.minimum((span - span.astype("datetime64[Y]")).astype(np.int64), 364)
        next_days = np.arange(first + 1, last + 1) * settings.DAY - self.origin
        return _SEASONAL_RESPONSE_FACTORS[day_of_year][np.searchsorted(next_days, arrival, "right")]

    def _draw_detail(self, block: int) -> dict[str, np.ndarray]:
        resident = self.resident
        rows = slice(block * B, (block + 1) * B)
        arrival = resident.arrival[rows].astype(np.int64)
        responded = resident.responded[rows].astype(np.int64)
        answers = responded != NEVER
        rng = np.random.default_rng([self.seed, block, 1])

        # Answering records opened and clicked before answering.
        answer_open = arrival + (responded - arrival) * rng.uniform(0.02, 0.5, B)
        answer_click = answer_open + (responded - answer_open) * rng.uniform(0.1, 0.95, B)
        fails = (rng.random(B) < settings.FAILURE_RATE) & ~answers
        failed = np.where(
            fails, arrival + rng.integers(60, settings.MAX_FAILURE_DELAY, B, endpoint=True), NEVER
        )
        failure = rng.integers(0, len(settings.FAILURE_STATUSES), B, dtype=np.int8)
        opens = (rng.random(B) < settings.OPEN_RATE) & ~fails
        clicks = opens & (rng.random(B) < settings.CLICK_RATE)
        open_at = arrival + np.clip(np.exp(rng.normal(math.log(6 * 3600), 1.5, B)), 30, 60 * 86400)
        click_at = open_at + np.clip(np.exp(rng.normal(math.log(600), 1.5, B)), 5, 10 * 86400)
        opened = np.where(answers, answer_open, np.where(opens, open_at, NEVER))
        clicked = np.where(answers, answer_click, np.where(clicks, click_at, NEVER))

        in_incident = (responded >= self.incident[0]) & (responded < self.incident[1])
        power = (
            _TOUCHPOINT_SCORE_POWERS[resident.touchpoint[rows]]
            * _COUNTRY_SCORE_POWERS[resident.country[rows]]
        )
        power[in_incident] *= settings.INCIDENT_SCORE_POWER
        u = rng.random(B)
        shifted = power != 1.0  # most records: raising only the others is much cheaper
        u[shifted] **= power[shifted]
        nps = _weighted(u, settings.NPS_WEIGHTS)
        detail = {
            "email_sent": _int32(arrival + rng.integers(0, 300, B)),
            "opened": _int32(np.floor(opened)),
            "clicked": _int32(np.floor(clicked)),
            "failed": _int32(failed),
            "failure": failure,
            "nps": nps,
            "comment_start": np.where(
                rng.random(B) < 0.6, rng.integers(0, len(settings.COMMENT_WORDS), B), -1
            ).astype(np.int16),
            "comment_words": rng.integers(1, 13, B, dtype=np.int8),
            "language": _weighted(rng.random(B), settings.LANGUAGE_WEIGHTS).astype(np.int8),
            "first_name": rng.integers(0, len(settings.FIRST_NAMES), B, dtype=np.int16),
            "last_name": _maybe(rng, rng.integers(0, len(settings.LAST_NAMES), B), 0.03),
            "company": rng.integers(0, len(settings.COMPANIES), B, dtype=np.int16),
            "account": _maybe(rng, rng.integers(0, settings.ACCOUNTS_PER_COMPANY, B), 0.1),
            "customer_number": rng.integers(1, 10_000_000, B, dtype=np.int64),
            "order_number": _maybe(rng, rng.integers(1, 100_000_000, B), 0.1),
            "phone": _maybe(rng, rng.integers(10**9, 10**10, B), 0.15),
            "email_domain": rng.integers(0, len(settings.EMAIL_DOMAINS), B, dtype=np.int8),
            "link": rng.integers(0, 2**62, B, dtype=np.int64),
            "follow_up": (rng.random(B) < 0.1),
            "follow_up_details": _maybe(
                rng, rng.integers(0, len(settings.FOLLOW_UP_DETAILS), B), 0.3
            ),
            **_tags_and_drivers(rng, nps, in_incident),
            "answers": rng.integers(-1, len(settings.ANSWERS), (B, len(settings.QUESTIONS))).astype(
                np.int8
            ),
        }
        for field, values in settings.OTHER_SEGMENT_VALUES.items():
            weights = np.full(len(values), 1 / len(values))
            detail[f"segment:{field}"] = _categorical(rng, tuple(weights.tolist()))
        return detail


def _tags_and_drivers(
    rng: np.random.Generator, nps: np.ndarray, in_incident: np.ndarray
) -> dict[str, np.ndarray]:
    """Tags and drivers that go with each score (settings.TAG_RATES, DRIVER_*): every rate and
    threshold is a row of a table by score, looked up once per record."""
    tag_rates = _TAG_RATES_BY_SCORE[nps]
    mention_rates = _MENTION_RATES_BY_SCORE[nps]
    incident_detractors = np.flatnonzero(in_incident & (nps <= 6))
    if len(incident_detractors):
        tag_rates[incident_detractors, _INCIDENT_TAG] = settings.INCIDENT_MENTION_RATE
        mention_rates[incident_detractors, _INCIDENT_DRIVER] = settings.INCIDENT_MENTION_RATE
    u = rng.random((B, len(settings.DRIVERS)))
    sentiment = (u >= _POSITIVE_BELOW[nps]).astype(np.int8) + (u >= _NEUTRAL_BELOW[nps])
    mentioned = rng.random((B, len(settings.DRIVERS))) < mention_rates
    return {
        "tags": rng.random((B, len(settings.TAGS))) < tag_rates,
        "drivers": np.where(mentioned, sentiment, np.int8(-1)),
    }


def _by_score(by_band: tuple[tuple[float, ...], ...]) -> np.ndarray:
    """Rows by band (detractor, passive, promoter) as rows by score 0-10."""
    bands = [0] * 7 + [1] * 2 + [2] * 2
    return np.array([by_band[band] for band in bands])


_SCORES = np.arange(11, dtype=np.float64)[:, np.newaxis]
_POSITIVE_BELOW = np.clip(0.1 * _SCORES - 0.2 + settings.DRIVER_SENTIMENT_BIASES, 0.02, 0.95)
_NEUTRAL_BELOW = 1 - np.clip(0.7 - 0.1 * _SCORES - settings.DRIVER_SENTIMENT_BIASES, 0.02, 0.95)
_TAG_RATES_BY_SCORE = _by_score(settings.TAG_RATES)
_MENTION_RATES_BY_SCORE = _by_score(settings.DRIVER_MENTION_RATES)
_INCIDENT_TAG = settings.TAGS.index(settings.INCIDENT_DRIVER)
_INCIDENT_DRIVER = [name for _, name in settings.DRIVERS].index(settings.INCIDENT_DRIVER)
_TOUCHPOINT_SCORE_POWERS = np.array(settings.TOUCHPOINT_SCORE_POWERS)
_COUNTRY_SCORE_POWERS = np.array(settings.COUNTRY_SCORE_POWERS)
_TOUCHPOINT_RESPONSE_RATES = settings.RESPONSE_RATE * np.array(settings.TOUCHPOINT_RESPONSE_FACTORS)
_SEASONAL_RESPONSE_FACTORS = 1 + settings.SEASONAL_RESPONSE_SWING * np.cos(
    2 * np.pi * (np.arange(365) - settings.SEASONAL_PEAK_DAY) / 365
)


class _Storage:
    """Growable resident columns. Arrays get spare capacity that costs no memory until written
    (the kernel maps untouched pages lazily), and snapshots are views, so growth never copies
    what a reader might be looking at."""

    def __init__(self, reserve: int) -> None:
        self.size = 0
        self._reserve = reserve * B
        self._arrays: dict[str, np.ndarray] = {}

    def append(self, block: dict[str, np.ndarray]) -> None:
        end = self.size + B
        if not self._arrays or end > len(self._arrays["arrival"]):
            capacity = max(2 * end, self._reserve)
            grown = {}
            for name, values in block.items():
                grown[name] = np.empty(capacity, dtype=values.dtype)
                if name in self._arrays:
                    grown[name][: self.size] = self._arrays[name][: self.size]
            self._arrays = grown
        for name, values in block.items():
            self._arrays[name][self.size : end] = values
        self.size = end

    def snapshot(self, previous: Resident | None) -> Resident:
        """The columns so far, with the v7 response order extended from `previous`."""
        columns = {name: values[: self.size] for name, values in self._arrays.items()}
        base = 0 if previous is None else previous.size
        new_indexes = np.flatnonzero(columns["responded"][base:] != NEVER).astype(np.int32) + base
        new_times = columns["responded"][new_indexes]
        if previous is None:
            order = np.argsort(new_times, kind="stable")
            response_indexes, response_times = new_indexes[order], new_times[order]
        else:
            # New records arrive after every old one, so they answer after every old arrival: the
            # order up to the last old arrival is final; only the rest is sorted again.
            last_arrival = previous.arrival[-1]
            settled = position(previous.response_times, int(last_arrival), "right")
            tail_indexes = np.concatenate([previous.response_indexes[settled:], new_indexes])
            tail_times = np.concatenate([previous.response_times[settled:], new_times])
            order = np.lexsort((tail_indexes, tail_times))
            response_indexes = np.concatenate(
                [previous.response_indexes[:settled], tail_indexes[order]]
            )
            response_times = np.concatenate([previous.response_times[:settled], tail_times[order]])
        return Resident(**columns, response_indexes=response_indexes, response_times=response_times)


def position(sorted_times: np.ndarray, t: int, side: Literal["left", "right"] = "left") -> int:
    """Where `t` goes in an int32 array. The needle must be int32 too: a Python int makes numpy
    search a converted int64 copy of the whole array (80 MB and tens of ms at 10M records)."""
    needle = np.int32(min(max(t, -NEVER), NEVER))
    return int(np.searchsorted(sorted_times, needle, side=side))


def _int32(values: np.ndarray) -> np.ndarray:
    clipped: np.ndarray = np.minimum(values, NEVER)
    return clipped.astype(np.int32)


def _categorical(rng: np.random.Generator, weights: tuple[float, ...]) -> np.ndarray:
    """Codes drawn by weight; -1 (the record lacks the field) at MISSING_SEGMENT_RATE."""
    return _segment_codes(rng.random(B), rng.random(B), weights)


def _segment_codes(u: np.ndarray, u_missing: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """Codes by weight from uniforms `u`; -1 (the record lacks the field) where `u_missing` is
    below MISSING_SEGMENT_RATE."""
    codes = _weighted(u, weights)
    codes[u_missing < settings.MISSING_SEGMENT_RATE] = -1
    return codes


def _weighted(u: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """Codes 0..len(weights)-1 by weight from uniforms (a few comparisons beat a search)."""
    codes = np.zeros(len(u), dtype=np.int8)
    for edge in (np.cumsum(weights) / sum(weights))[:-1]:
        codes += u >= edge
    return codes


def _maybe(rng: np.random.Generator, values: np.ndarray, missing_rate: float) -> np.ndarray:
    """`values` with -1 at `missing_rate` of the places."""
    return np.where(rng.random(len(values)) < missing_rate, -1, values)
