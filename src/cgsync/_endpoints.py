"""The endpoint table: one row per resource drives the walk, the parameters and the lake table."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from cgsync._exceptions import ConfigError

CursorKind = Literal["int", "opaque"]
RecordKind = Literal["response", "non_response"]


@dataclass(frozen=True)
class Endpoint:
    """One CustomerGauge sync endpoint and how to walk it."""

    resource: str
    """The dlt resource and lake table name."""
    path: str
    version: int
    page_limit: int
    """The largest `per_page` the endpoint accepts (also the default: fewest calls)."""
    cursor_kind: CursorKind
    ordering: str
    record_kind: RecordKind
    expansions: tuple[str, ...]
    """Allowed `with[]` values; v6 always carries every field and takes none."""
    period_fields: tuple[str, ...]
    """Allowed `period[field]` values."""

    def check_per_page(self, per_page: int) -> int:
        """Return `per_page` if the endpoint accepts it, else raise ConfigError."""
        if not 1 <= per_page <= self.page_limit:
            raise ConfigError(
                f"per_page {per_page} is out of range for {self.resource}: "
                f"use 1 to {self.page_limit}"
            )
        return per_page

    def check_expansions(self, expansions: Iterable[str]) -> tuple[str, ...]:
        """Return the expansions to send (unique, in order), refusing unknown ones."""
        chosen = tuple(dict.fromkeys(expansions))
        unknown = [name for name in chosen if name not in self.expansions]
        if unknown:
            allowed = ", ".join(self.expansions) or "none"
            raise ConfigError(
                f"--with {','.join(unknown)} is not available for {self.resource}: "
                f"allowed: {allowed}"
            )
        return chosen

    def check_period_field(self, field: str) -> str:
        """Return `field` if the endpoint filters on it, else raise ConfigError."""
        if field not in self.period_fields:
            allowed = ", ".join(self.period_fields) or "none"
            raise ConfigError(
                f"--period-field {field} is not available for {self.resource}: allowed: {allowed}"
            )
        return field


ENDPOINTS: dict[str, Endpoint] = {
    endpoint.resource: endpoint
    for endpoint in (
        Endpoint(
            resource="responses",
            path="/v7/rest/sync/responses",
            version=7,
            page_limit=1000,
            cursor_kind="int",
            ordering="response sequence",
            record_kind="response",
            expansions=("drivers", "questions", "tags", "properties"),
            # Assumption: the vendor lists the non-responses fields only.
            period_fields=("date_creation", "date_order", "date_sent", "date_survey_response"),
        ),
        Endpoint(
            resource="non_responses",
            path="/v7/rest/sync/non-responses",
            version=7,
            page_limit=1000,
            cursor_kind="int",
            ordering="survey record key",
            record_kind="non_response",
            expansions=("properties",),
            period_fields=("date_creation", "date_order", "date_sent"),
        ),
        Endpoint(
            resource="responses_v6",
            path="/v6/rest/responses",
            version=6,
            page_limit=400,
            cursor_kind="opaque",
            ordering="CGID",
            record_kind="response",
            expansions=(),
            period_fields=(),
        ),
    )
}


def get_endpoint(resource: str) -> Endpoint:
    """Return the endpoint of `resource`, or raise ConfigError naming the known ones."""
    try:
        return ENDPOINTS[resource]
    except KeyError:
        raise ConfigError(
            f"unknown resource {resource!r}: use one of {', '.join(ENDPOINTS)}"
        ) from None


def parse_resources(names: str | Iterable[str]) -> tuple[Endpoint, ...]:
    """Endpoints for comma-separated (or listed) resource names, unique and in order."""
    if isinstance(names, str):
        names = names.split(",")
    chosen = tuple(dict.fromkeys(name.strip() for name in names if name.strip()))
    if not chosen:
        raise ConfigError(f"--endpoints is empty: use one or more of {', '.join(ENDPOINTS)}")
    return tuple(get_endpoint(name) for name in chosen)
