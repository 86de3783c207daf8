"""Value variants: the same records in every form the vendor's pages allow for a value.

The pages show dates as `yyyy-mm-dd hh:mm:ss` in the system's time zone, but promise no
format. With `value_variants` on, each record (chosen by its CGID and the seed) comes in one
of the forms below; the data stays the same (truth() does not change), so a sync must load the
very lake it loads from the plain records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from cgsync.emulator import settings

Record = dict[str, Any]
DATE_FIELDS = (
    "date_creation",
    "date_order",
    "date_email_sent",
    "date_survey_response",
    "date_sent",
    "date_opened",
    "date_clicked",
)
_ELSEWHERE = timezone(timedelta(hours=5, minutes=30))
_LIST_FIELDS = ("tags", "drivers", "questions", "properties")


def _dates(form: Callable[[datetime], str]) -> Callable[[Record, ZoneInfo], None]:
    def vary(record: Record, zone: ZoneInfo) -> None:
        for name in DATE_FIELDS:
            if record.get(name):
                local = datetime.strptime(record[name], settings.DATE_FORMAT).replace(tzinfo=zone)
                record[name] = form(local)

    return vary


def _no_dates(marker: str) -> Callable[[Record, ZoneInfo], None]:
    def vary(record: Record, zone: ZoneInfo) -> None:
        for name in DATE_FIELDS:
            if name in record and record[name] is None:
                record[name] = marker

    return vary


def _numbers_as_strings(record: Record, zone: ZoneInfo) -> None:
    for name in ("number_customergauge", "nps"):
        if isinstance(record.get(name), int):
            record[name] = str(record[name])


def _fields_missing(record: Record, zone: ZoneInfo) -> None:
    for name in [name for name, value in record.items() if value is None]:
        del record[name]


def _null_lists(record: Record, zone: ZoneInfo) -> None:
    for name in _LIST_FIELDS:
        if record.get(name) == []:
            record[name] = None


VARIANTS: dict[str, Callable[[Record, ZoneInfo], None]] = {
    "iso-t": _dates(lambda local: local.strftime("%Y-%m-%dT%H:%M:%S")),
    "utc-z": _dates(lambda local: local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
    "offset": _dates(lambda local: local.isoformat()),
    "other-offset": _dates(lambda local: local.astimezone(_ELSEWHERE).isoformat()),
    "fraction": _dates(lambda local: local.strftime("%Y-%m-%d %H:%M:%S.000")),
    "utc-fraction-z": _dates(
        lambda local: local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    ),
    "empty-dates": _no_dates(""),
    "zero-dates": _no_dates("0000-00-00 00:00:00"),
    "numbers-as-strings": _numbers_as_strings,
    "fields-missing": _fields_missing,
    "null-lists": _null_lists,
}
_PLAIN_SHARE = 4
"""Of every len(VARIANTS) + this many records, this many keep the plain form."""


def variant_of(cgid: int, seed: int) -> str | None:
    """The variant of the record `cgid` (None: plain), fixed by the seed."""
    pick = (cgid * 2_654_435_761 + seed * 40_503) % (len(VARIANTS) + _PLAIN_SHARE)
    return list(VARIANTS)[pick] if pick < len(VARIANTS) else None


def vary_records(records: list[Record], zone: ZoneInfo, seed: int) -> list[Record]:
    """`records`, each in its variant's form (changed in place)."""
    for record in records:
        name = variant_of(int(record["number_customergauge"]), seed)
        if name is not None:
            VARIANTS[name](record, zone)
    return records
