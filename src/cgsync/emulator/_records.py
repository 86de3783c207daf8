"""Turn population columns into the API's JSON records (plain dicts, in the vendor's key order)."""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from cgsync.emulator import settings
from cgsync.emulator._population import NEVER
from cgsync.emulator._zone import LocalTime

Record = dict[str, Any]
_COMMENT_STRIDE = 7


class RecordRenderer:
    """Renders pages of records; strings are looked up from small tables, never stored per record."""

    def __init__(self, local_time: LocalTime, origin: int) -> None:
        self._local_time = local_time
        self._origin = origin
        self._first_slugs = [_slug(name) or "contact" for name in settings.FIRST_NAMES]
        self._last_slugs = [_slug(name) or "x" for name in settings.LAST_NAMES]
        words = settings.COMMENT_WORDS
        self._comments = [
            [
                " ".join(words[(start + j * _COMMENT_STRIDE) % len(words)] for j in range(n))
                for n in range(13)
            ]
            for start in range(len(words))
        ]
        # Shared, never mutated: a page's properties refer to these instead of building new dicts.
        self._properties = {
            field: [{"field": field, "reference": value} for value in values]
            for field, values in _segment_values().items()
        }
        self._drivers = [
            [
                {"id": driver_id, "name": name, "sentiment": sentiment}
                for sentiment in settings.SENTIMENTS
            ]
            for driver_id, name in settings.DRIVERS
        ]

    def non_responses(
        self,
        columns: dict[str, np.ndarray],
        statuses: np.ndarray,
        t: int,
        expansions: Collection[str],
    ) -> list[Record]:
        records = self._base(columns)
        statuses_text = [settings.STATUSES[code] for code in statuses.tolist()]
        sent = self._dates(columns["arrival"])
        opened = self._dates(columns["opened"], t)
        clicked = self._dates(columns["clicked"], t)
        email_sent = self._dates(columns["email_sent"])
        link = columns["link"].tolist()
        language = columns["language"].tolist()
        properties = self._property_lists(columns) if "properties" in expansions else None
        out: list[Record] = []
        for i, base in enumerate(records):
            record: Record = {"status": statuses_text[i], **base}
            record["date_sent"] = sent[i]
            record["date_opened"] = opened[i]
            record["date_clicked"] = clicked[i]
            record["language"] = settings.LANGUAGES[language[i]]
            record["link"] = f"{settings.SURVEY_LINK_PREFIX}{link[i]:x}"
            record["date_email_sent"] = email_sent[i]
            if properties is not None:
                record["properties"] = properties[i]
            out.append(record)
        return out

    def responses(
        self, columns: dict[str, np.ndarray], expansions: Collection[str]
    ) -> list[Record]:
        records = self._base(columns)
        nps = columns["nps"].tolist()
        comment_start = columns["comment_start"].tolist()
        comment_words = columns["comment_words"].tolist()
        email_sent = self._dates(columns["email_sent"])
        answered = self._dates(columns["responded"])
        language = columns["language"].tolist()
        follow_up = columns["follow_up"].tolist()
        follow_up_details = columns["follow_up_details"].tolist()
        tags = self._tag_lists(columns) if "tags" in expansions else None
        properties = self._property_lists(columns) if "properties" in expansions else None
        drivers = self._driver_lists(columns) if "drivers" in expansions else None
        questions = self._question_lists(columns) if "questions" in expansions else None
        out: list[Record] = []
        for i, record in enumerate(records):
            start = comment_start[i]
            record["nps"] = nps[i]
            record["comment"] = self._comments[start][comment_words[i]] if start >= 0 else None
            record["date_creation"] = record.pop("date_creation")
            record["date_order"] = record.pop("date_order")
            record["date_email_sent"] = email_sent[i]
            record["date_survey_response"] = answered[i]
            record["language"] = settings.LANGUAGES[language[i]]
            details = follow_up_details[i]
            record["follow_up"] = {
                "requested": follow_up[i],
                "details": settings.FOLLOW_UP_DETAILS[details] if details >= 0 else None,
            }
            if tags is not None:
                record["tags"] = tags[i]
            if properties is not None:
                record["properties"] = properties[i]
            if drivers is not None:
                record["drivers"] = drivers[i]
            if questions is not None:
                record["questions"] = questions[i]
            out.append(record)
        return out

    def _base(self, columns: dict[str, np.ndarray]) -> list[Record]:
        """The fields every kind of record starts with."""
        index = columns["index"].tolist()
        first = columns["first_name"].tolist()
        last = columns["last_name"].tolist()
        company = columns["company"].tolist()
        account_number = columns["account_number"].tolist()
        customer_number = columns["customer_number"].tolist()
        order_number = columns["order_number"].tolist()
        phone = columns["phone"].tolist()
        domain = columns["email_domain"].tolist()
        created = self._dates(columns["creation"])
        ordered = self._dates(columns["order"])
        records = []
        for i, key in enumerate(index):
            last_name = last[i]
            records.append(
                {
                    "contact": {
                        "first_name": settings.FIRST_NAMES[first[i]],
                        "last_name": settings.LAST_NAMES[last_name] if last_name >= 0 else None,
                    },
                    "account": {
                        "name": settings.COMPANIES[company[i]],
                        "number": str(account_number[i]) if account_number[i] >= 0 else None,
                    },
                    "number_customergauge": key + settings.CGID_OFFSET + 1,
                    "number_customer": str(customer_number[i]),
                    "number_order": str(order_number[i]) if order_number[i] >= 0 else None,
                    "email": (
                        f"{self._first_slugs[first[i]]}.{self._last_slugs[max(last_name, 0)]}.{key}"
                        f"@{settings.EMAIL_DOMAINS[domain[i]]}"
                    ),
                    "phone": str(phone[i]) if phone[i] >= 0 else None,
                    "date_creation": created[i],
                    "date_order": ordered[i],
                }
            )
        return records

    def _dates(self, times: np.ndarray, t: int | None = None) -> Sequence[str | None]:
        """Local date texts; None where the time is NEVER (or still after `t`)."""
        missing = times == NEVER if t is None else times > t
        texts: list[str | None] = list(
            self._local_time.format(times.astype(np.int64) + self._origin)
        )
        for i in np.flatnonzero(missing).tolist():
            texts[i] = None
        return texts

    def _property_lists(self, columns: dict[str, np.ndarray]) -> list[list[Record]]:
        codes = [
            (field, columns[_segment_column(field)].tolist()) for field in settings.SEGMENT_FIELDS
        ]
        lists: list[list[Record]] = [[] for _ in range(len(columns["index"]))]
        for field, field_codes in codes:
            shared = self._properties[field]
            for i, code in enumerate(field_codes):
                if code >= 0:
                    lists[i].append(shared[code])
        return lists

    def _tag_lists(self, columns: dict[str, np.ndarray]) -> list[list[str]]:
        return [
            [tag for tag, on in zip(settings.TAGS, row, strict=True) if on]
            for row in columns["tags"].tolist()
        ]

    def _driver_lists(self, columns: dict[str, np.ndarray]) -> list[list[Record]]:
        return [
            [self._drivers[d][sentiment] for d, sentiment in enumerate(row) if sentiment >= 0]
            for row in columns["drivers"].tolist()
        ]

    def _question_lists(self, columns: dict[str, np.ndarray]) -> list[list[Record]]:
        return [
            [
                {
                    "id": question_id,
                    "question": question,
                    "answer": settings.ANSWERS[a] if a >= 0 else None,
                }
                for (question_id, question), a in zip(settings.QUESTIONS, row, strict=True)
            ]
            for row in columns["answers"].tolist()
        ]


def _segment_values() -> dict[str, tuple[str | None, ...]]:
    return {
        "Country": settings.COUNTRIES,
        "Touchpoint": settings.TOUCHPOINTS,
        **settings.OTHER_SEGMENT_VALUES,
    }


def _segment_column(field: str) -> str:
    """The population column holding a segment field's codes."""
    return {"Country": "country", "Touchpoint": "touchpoint"}.get(field, f"segment:{field}")


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_name.lower() if ch.isalnum())
