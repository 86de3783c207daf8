"""Local times of the CustomerGauge system's zone, vectorised over numpy arrays."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

_SEARCH_YEARS_BEFORE = 5
_SEARCH_YEARS_AFTER = 40


class LocalTime:
    """Converts Unix seconds to the zone's wall-clock text, DST included.

    The zone's UTC-offset transitions are found once (a day-by-day scan refined to the second),
    so converting an array is one searchsorted plus an add.
    """

    def __init__(self, zone_name: str, around: datetime) -> None:
        self.zone = ZoneInfo(zone_name)
        first = int((around - timedelta(days=365 * _SEARCH_YEARS_BEFORE)).timestamp())
        last = int((around + timedelta(days=365 * _SEARCH_YEARS_AFTER)).timestamp())
        starts = [np.iinfo(np.int64).min]
        offsets = [self._offset(first)]
        for day in range(first, last, 86_400):
            if self._offset(day + 86_400) != offsets[-1]:
                moment = self._first_second_with_new_offset(day, day + 86_400, offsets[-1])
                starts.append(moment)
                offsets.append(self._offset(moment))
        self._starts = np.array(starts, dtype=np.int64)
        self._offsets = np.array(offsets, dtype=np.int64)

    @classmethod
    @functools.cache
    def of(cls, zone_name: str, around: date) -> LocalTime:
        """A shared instance: finding the transitions takes a few tens of milliseconds."""
        return cls(zone_name, datetime(around.year, around.month, around.day, tzinfo=UTC))

    def local_seconds(self, unix_seconds: np.ndarray) -> np.ndarray:
        """Wall-clock seconds (as if the zone were UTC) for each instant."""
        seconds = unix_seconds.astype(np.int64, copy=False)
        return seconds + self._offsets[np.searchsorted(self._starts, seconds, side="right") - 1]

    def format(self, unix_seconds: np.ndarray) -> list[str]:
        """`YYYY-MM-DD HH:MM:SS` in the zone for each instant."""
        days, seconds = np.divmod(self.local_seconds(unix_seconds), 86_400)
        day_texts, time_texts = _text_tables()
        if len(days) and (days.min() < 0 or days.max() >= len(day_texts)):
            return _slow_format(days * 86_400 + seconds)
        texts: list[str] = (day_texts[days] + time_texts[seconds]).tolist()  # str + str, in C
        return texts

    def day_start(self, day: date) -> int:
        """The Unix second at which the local `day` begins."""
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        return int(midnight.astimezone(UTC).timestamp())

    def _offset(self, unix_second: int) -> int:
        moment = datetime.fromtimestamp(unix_second, UTC).astimezone(self.zone)
        offset = moment.utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    def _first_second_with_new_offset(self, low: int, high: int, old_offset: int) -> int:
        while high - low > 1:
            middle = (low + high) // 2
            if self._offset(middle) == old_offset:
                low = middle
            else:
                high = middle
        return high


_TABLE_DAYS = 365 * 130
"""Day texts are tabled from 1970 for this many days."""


@functools.cache
def _text_tables() -> tuple[np.ndarray, np.ndarray]:
    """ "YYYY-MM-DD " for each day since 1970 and "HH:MM:SS" for each second of a day: two takes
    and a concatenation format a date several times faster than numpy's datetime_as_string."""
    days = np.datetime_as_string(np.arange(_TABLE_DAYS).astype("datetime64[D]"))
    day_texts = np.char.add(days, " ").astype(object)
    # "1970-01-01THH:MM:SS" for each second of the first day, less its first 11 characters.
    clock = np.datetime_as_string(np.arange(86_400).astype("datetime64[s]")).astype("<U19")
    characters = np.ascontiguousarray(clock.view(np.uint32).reshape(-1, 19)[:, 11:])
    return day_texts, characters.view("<U8").ravel().astype(object)


def _slow_format(wall_seconds: np.ndarray) -> list[str]:
    texts = np.datetime_as_string(wall_seconds.astype("datetime64[s]"), unit="s")
    return [text.replace("T", " ") for text in texts.tolist()]
