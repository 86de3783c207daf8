"""Turn population columns into the API's JSON records (plain dicts, in the vendor's key order).

Nested values (contact, properties, tags, drivers, questions, follow-up) are built once per
combination of their small codes and shared by every record that has it: a page is serialised at
once and never changed, so sharing is safe, and it makes rendering several times faster.
"""

from __future__ import annotations

import itertools
import math
import unicodedata
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np

from cgsync.emulator import settings
from cgsync.emulator._population import NEVER
from cgsync.emulator._zone import LocalTime

Record = dict[str, Any]
Columns = dict[str, np.ndarray]
_COMMENT_STRIDE = 7
_MAX_COMMENT_WORDS = 12


class _Shared:
    """A JSON value for every combination of some small codes (each -1 .. size-2), built once;
    records look theirs up with one vectorised take and share it."""

    def __init__(self, sizes: Sequence[int], build: Callable[[tuple[int, ...]], Any]) -> None:
        self._weights = np.cumprod([1, *sizes[:-1]]).astype(np.int64)
        self._table = np.empty(math.prod(sizes), dtype=object)
        # product() varies its last digit fastest; reversed, the first digit is the lowest.
        combinations = itertools.product(*(range(size) for size in reversed(sizes)))
        for key, digits in enumerate(combinations):
            self._table[key] = build(tuple(reversed(digits)))

    def values(self, *codes: np.ndarray) -> list[Any]:
        """One value per record; `codes` are columns, or one matrix with a column per code."""
        if len(codes) > 1:
            matrix = np.column_stack(codes)
        else:
            matrix = codes[0] if codes[0].ndim == 2 else codes[0][:, np.newaxis]
        keys = (matrix.astype(np.int64) + 1) @ self._weights
        return list(self._table[keys].tolist())


def _choice(values: Sequence[Any]) -> _Shared:
    """A lookup of one code into `values` (code -1 gives None)."""
    return _Shared([len(values) + 1], lambda digits: values[digits[0] - 1] if digits[0] else None)


def _segment_values() -> dict[str, tuple[str | None, ...]]:
    return {
        "Country": settings.COUNTRIES,
        "Touchpoint": settings.TOUCHPOINTS,
        **settings.OTHER_SEGMENT_VALUES,
    }


def _segment_column(field: str) -> str:
    """The population column holding a segment field's codes."""
    return {"Country": "country", "Touchpoint": "touchpoint"}.get(field, f"segment:{field}")


def _contact(digits: tuple[int, ...]) -> Record:
    first, last = digits
    return {
        "first_name": settings.FIRST_NAMES[first - 1],
        "last_name": settings.LAST_NAMES[last - 1] if last else None,
    }


def _properties(fields: Sequence[str]) -> Callable[[tuple[int, ...]], list[Record]]:
    """Builds the {field, reference} list of some segment fields (digit 0: the field is absent)."""
    values = _segment_values()

    def build(digits: tuple[int, ...]) -> list[Record]:
        return [
            {"field": field, "reference": values[field][digit - 1]}
            for field, digit in zip(fields, digits, strict=True)
            if digit
        ]

    return build


def _account(digits: tuple[int, ...]) -> Record:
    company, account = digits
    return {
        "name": settings.COMPANIES[company - 1],
        "number": str(10_000 * company + account) if account else None,
    }


def _tags(digits: tuple[int, ...]) -> list[str]:
    return [tag for tag, digit in zip(settings.TAGS, digits, strict=True) if digit]


def _drivers(digits: tuple[int, ...]) -> list[Record]:
    return [
        {"id": driver_id, "name": name, "sentiment": settings.SENTIMENTS[digit - 1]}
        for (driver_id, name), digit in zip(settings.DRIVERS, digits, strict=True)
        if digit
    ]


def _questions(digits: tuple[int, ...]) -> list[Record]:
    return [
        {"id": question_id, "question": text, "answer": settings.ANSWERS[d - 1] if d else None}
        for (question_id, text), d in zip(settings.QUESTIONS, digits, strict=True)
    ]


def _follow_up(digits: tuple[int, ...]) -> Record:
    requested, details = digits
    return {
        "requested": bool(requested),
        "details": settings.FOLLOW_UP_DETAILS[details - 1] if details else None,
    }


class RecordRenderer:
    """Renders pages of records; strings come from small tables, never stored per record."""

    def __init__(self, local_time: LocalTime, origin: int) -> None:
        self._local_time = local_time
        self._origin = origin
        first_slugs = [_slug(name) or "contact" for name in settings.FIRST_NAMES]
        last_slugs = [_slug(name) or "x" for name in settings.LAST_NAMES]
        # "first.last." of an email address; a record without a last name still gets one.
        self._email_names = _Shared(
            (len(first_slugs) + 1, len(last_slugs) + 1),
            lambda d: f"{first_slugs[d[0] - 1]}.{last_slugs[max(d[1] - 1, 0)]}.",
        )
        self._email_domains = _choice([f"@{domain}" for domain in settings.EMAIL_DOMAINS])
        self._statuses = _choice(settings.STATUSES)
        self._languages = _choice(settings.LANGUAGES)
        words = settings.COMMENT_WORDS
        self._comments = [
            [
                " ".join(words[(start + j * _COMMENT_STRIDE) % len(words)] for j in range(n))
                for n in range(_MAX_COMMENT_WORDS + 1)
            ]
            for start in range(len(words))
        ]
        self._contact = _Shared(
            (len(settings.FIRST_NAMES) + 1, len(settings.LAST_NAMES) + 1), _contact
        )
        # One shared {"field", "reference"} per segment value; a record's list picks from them.
        # All 194,400 combinations of the seven segments would be too many to build; two halves
        # are few, and a record's list is the sum of its two halves' lists.
        fields = settings.SEGMENT_FIELDS
        self._segment_halves = [
            (half, _Shared([len(_segment_values()[f]) + 1 for f in half], _properties(half)))
            for half in (fields[: len(fields) // 2 + 1], fields[len(fields) // 2 + 1 :])
        ]
        self._accounts = _Shared(
            (len(settings.COMPANIES) + 1, settings.ACCOUNTS_PER_COMPANY + 1), _account
        )
        self._tags = _Shared([2] * len(settings.TAGS), _tags)
        self._drivers = _Shared([len(settings.SENTIMENTS) + 1] * len(settings.DRIVERS), _drivers)
        self._questions = _Shared([len(settings.ANSWERS) + 1] * len(settings.QUESTIONS), _questions)
        self._follow_up = _Shared((2, len(settings.FOLLOW_UP_DETAILS) + 1), _follow_up)

    def non_responses(
        self, columns: Columns, statuses: np.ndarray, t: int, expansions: Collection[str]
    ) -> list[Record]:
        """Non-response records as they are at time `t`."""
        records = [
            {
                "status": status,
                "contact": contact,
                "account": account,
                "number_customergauge": cgid,
                "number_customer": customer,
                "number_order": order,
                "email": email,
                "phone": phone,
                "date_creation": created,
                "date_order": ordered,
                "date_sent": sent,
                "date_opened": opened,
                "date_clicked": clicked,
                "language": language,
                "link": link,
                "date_email_sent": email_sent,
            }
            for (
                status, contact, account, cgid, customer, order, email, phone, created, ordered,
                sent, opened, clicked, language, link, email_sent,
            ) in zip(
                self._statuses.values(statuses),
                *self._common(columns),
                self._dates(columns["arrival"]),
                self._dates(columns["opened"], t),
                self._dates(columns["clicked"], t),
                self._languages.values(columns["language"]),
                [f"{settings.SURVEY_LINK_PREFIX}{link:x}" for link in columns["link"].tolist()],
                self._dates(columns["email_sent"]),
                strict=True,
            )
        ]  # fmt: skip
        if "properties" in expansions:
            _attach(records, "properties", self._property_lists(columns))
        return records

    def responses(
        self, columns: Columns, expansions: Collection[str], edited_by: int | None = None
    ) -> list[Record]:
        """Response records with the given expansions (v6 asks for all of them); with the
        edits made by time `edited_by`, if given (`EmulatorConfig.edits`)."""
        records = [
            {
                "contact": contact,
                "account": account,
                "number_customergauge": cgid,
                "number_customer": customer,
                "number_order": order,
                "email": email,
                "phone": phone,
                "nps": nps,
                "comment": comment,
                "date_creation": created,
                "date_order": ordered,
                "date_email_sent": email_sent,
                "date_survey_response": answered,
                "language": language,
                "follow_up": follow_up,
            }
            for (
                contact, account, cgid, customer, order, email, phone, created, ordered, nps,
                comment, email_sent, answered, language, follow_up,
            ) in zip(
                *self._common(columns),
                columns["nps"].tolist(),
                self._comment_texts(columns),
                self._dates(columns["email_sent"]),
                self._dates(columns["responded"]),
                self._languages.values(columns["language"]),
                self._follow_up.values(columns["follow_up"].astype(np.int8) - 1, columns["follow_up_details"]),
                strict=True,
            )
        ]  # fmt: skip
        if "tags" in expansions:
            _attach(records, "tags", self._tags.values(columns["tags"].astype(np.int8) - 1))
        if "properties" in expansions:
            _attach(records, "properties", self._property_lists(columns))
        if "drivers" in expansions:
            _attach(records, "drivers", self._drivers.values(columns["drivers"]))
        if "questions" in expansions:
            _attach(records, "questions", self._questions.values(columns["answers"]))
        if edited_by is not None:
            _edit(records, columns, edited_by)
        return records

    def _common(self, columns: Columns) -> list[list[Any]]:
        """contact, account, CGID, customer and order numbers, email, phone, creation and
        order dates: the fields both kinds of record share, one list each."""
        names = (columns["first_name"], columns["last_name"])
        return [
            self._contact.values(*names),
            self._accounts.values(columns["company"], columns["account"]),
            (columns["index"] + (settings.CGID_OFFSET + 1)).tolist(),
            [str(number) for number in columns["customer_number"].tolist()],
            _optional_numbers(columns["order_number"]),
            [
                f"{name}{key}{domain}"
                for name, key, domain in zip(
                    self._email_names.values(*names),
                    columns["index"].tolist(),
                    self._email_domains.values(columns["email_domain"]),
                    strict=True,
                )
            ],
            _optional_numbers(columns["phone"]),
            self._dates(columns["creation"]),
            self._dates(columns["order"]),
        ]

    def _dates(self, times: np.ndarray, t: int | None = None) -> list[str | None]:
        """Local date texts; None where the time is NEVER (or still after `t`)."""
        texts: list[str | None] = list(
            self._local_time.format(times.astype(np.int64) + self._origin)
        )
        missing = times == NEVER if t is None else times > t
        for i in np.flatnonzero(missing).tolist():
            texts[i] = None
        return texts

    def _comment_texts(self, columns: Columns) -> list[str | None]:
        comments = self._comments
        return [
            comments[start][words] if start >= 0 else None
            for start, words in zip(
                columns["comment_start"].tolist(), columns["comment_words"].tolist(), strict=True
            )
        ]

    def _property_lists(self, columns: Columns) -> list[list[Record]]:
        first, second = (
            lists.values(*(columns[_segment_column(field)] for field in half))
            for half, lists in self._segment_halves
        )
        return [a + b for a, b in zip(first, second, strict=True)]


def _edit(records: list[Record], columns: Columns, t: int) -> None:
    """The edits the closed loop has made by `t`: each kind to one record in EDIT_EVERY."""
    indexes, answered = columns["index"].tolist(), columns["responded"].tolist()
    for record, index, at in zip(records, indexes, answered, strict=True):
        if index % settings.EDIT_EVERY == 0 and t >= at + settings.COMMENT_EDIT_DELAY:
            record["comment"] = (record["comment"] or "") + settings.EDITED_COMMENT_SUFFIX
        if index % settings.EDIT_EVERY == 1 and t >= at + settings.FOLLOW_UP_EDIT_DELAY:
            record["follow_up"] = dict(settings.EDITED_FOLLOW_UP)
        if (
            index % settings.EDIT_EVERY == 2
            and "tags" in record
            and t >= at + settings.TAG_EDIT_DELAY
        ):
            record["tags"] = [*(record["tags"] or []), settings.ADDED_TAG]


def _attach(records: list[Record], key: str, values: list[Any]) -> None:
    for record, value in zip(records, values, strict=True):
        record[key] = value


def _optional_numbers(values: np.ndarray) -> list[str | None]:
    return [str(value) if value >= 0 else None for value in values.tolist()]


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_name.lower() if ch.isalnum())
