"""The query parameters of the listings: their types (for validation and the OpenAPI schema)
and their conversion into listing filters."""

from collections.abc import Awaitable, Callable, Iterable
from datetime import date, timedelta
from enum import Enum
from typing import Annotated

from fastapi import Query, Request

from cgsync.emulator import settings
from cgsync.emulator._errors import InvalidParameters
from cgsync.emulator._listings import Filters, Period
from cgsync.emulator._population import NEVER
from cgsync.emulator._state import EmulatorState

_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
_MAX_CURSOR = 2**53
_EARLIEST_DAY = date(1900, 1, 1)
_LATEST_DAY = date(2999, 12, 31)


def _choices(name: str, values: Iterable[str]) -> type[Enum]:
    """A string enum, so that the OpenAPI schema lists the allowed values."""
    return Enum(name, {value: value for value in values}, type=str)  # type: ignore[return-value]


NonResponseExpansion = _choices("NonResponseExpansion", settings.EXPANSIONS_V7_NON_RESPONSES)
ResponseExpansion = _choices("ResponseExpansion", settings.EXPANSIONS_V7_RESPONSES)
NonResponsePeriodField = _choices("NonResponsePeriodField", settings.PERIOD_FIELDS_NON_RESPONSES)
ResponsePeriodField = _choices("ResponsePeriodField", settings.PERIOD_FIELDS_RESPONSES)
OutboundFilter = _choices("OutboundFilter", settings.OUTBOUND_FILTERS)
# Outbound filter name -> (resident column, segment code) it keeps.
_OUTBOUND_CODES = {
    name: (
        field.lower(),
        {"Country": settings.COUNTRIES, "Touchpoint": settings.TOUCHPOINTS}[field].index(value),
    )
    for name, (field, value) in settings.OUTBOUND_FILTERS.items()
}

PerPageV7 = Annotated[
    int, Query(ge=1, le=settings.V7_MAX_PER_PAGE, description="Records per page, 1 to 1000.")
]
CursorV7 = Annotated[
    int | None, Query(ge=0, le=_MAX_CURSOR, description="`cursor.next` of the previous page.")
]
PeriodStart = Annotated[
    str | None, Query(alias="period[start]", pattern=_DATE_PATTERN, description="yyyy-mm-dd")
]
PeriodEnd = Annotated[
    str | None, Query(alias="period[end]", pattern=_DATE_PATTERN, description="yyyy-mm-dd")
]
CgidFilter = Annotated[
    int | None,
    Query(
        alias=settings.CGID_FILTER_PARAM,
        ge=0,
        le=_MAX_CURSOR,
        description="CGID filter (assumed name).",
    ),
]
NonResponseExpansions = Annotated[list[NonResponseExpansion], Query(alias="with[]")]  # type: ignore[valid-type]
ResponseExpansions = Annotated[list[ResponseExpansion], Query(alias="with[]")]  # type: ignore[valid-type]
Outbound = Annotated[
    OutboundFilter | None,  # type: ignore[valid-type]
    Query(
        alias=settings.OUTBOUND_FILTER_PARAM,
        description="Outbound filter reference (assumed name).",
    ),
]


def v7_filters(period_fields: type[Enum]) -> Callable[..., Awaitable[Filters]]:
    """The dependency reading a v7 listing's filters; `period_fields` are the allowed fields."""

    async def filters(
        request: Request,
        period_field: Annotated[period_fields | None, Query(alias="period[field]")] = None,  # type: ignore[valid-type]
        period_start: PeriodStart = None,
        period_end: PeriodEnd = None,
        cgid: CgidFilter = None,
        outbound: Outbound = None,
    ) -> Filters:
        state: EmulatorState = request.app.state.emulator
        return _filters(state, period_field, period_start, period_end, cgid, outbound)

    return filters


def _filters(
    state: EmulatorState,
    period_field: Enum | None,
    period_start: str | None,
    period_end: str | None,
    cgid: int | None,
    outbound: Enum | None,
) -> Filters:
    period = _period(state, period_field, period_start, period_end)
    index = None if cgid is None else max(cgid - settings.CGID_OFFSET - 1, -1)
    outbound_filter = None if outbound is None else _OUTBOUND_CODES[outbound.value]
    return Filters(period=period, index=index, outbound=outbound_filter)


def _period(
    state: EmulatorState, field: Enum | None, start: str | None, end: str | None
) -> Period | None:
    given = {"period.field": field, "period.start": start, "period.end": end}
    if all(value is None for value in given.values()):
        return None
    errors: dict[str, list[str]] = {
        name: [f"The {name} field is required when period is present."]
        for name, value in given.items()
        if value is None
    }
    days: dict[str, date] = {}
    for name, text in (("period.start", start), ("period.end", end)):
        if text is not None:
            try:
                days[name] = date.fromisoformat(text)
            except ValueError:
                errors[name] = [f"The {name} is not a valid date."]
    if len(days) == 2 and days["period.end"] < days["period.start"]:
        errors["period.end"] = ["The period.end must be a date after or equal to period.start."]
    refused = state.config.refuse_answer_period
    if refused and field is not None and field.value == "date_survey_response":
        errors["period.field"] = ["The selected period.field is invalid."]
    if errors:
        raise InvalidParameters(errors)
    assert field is not None
    low_day = min(max(days["period.start"], _EARLIEST_DAY), _LATEST_DAY)
    high_day = min(max(days["period.end"], _EARLIEST_DAY), _LATEST_DAY) + timedelta(days=1)
    low = state.population.relative(state.local_time.day_start(low_day))
    high = state.population.relative(state.local_time.day_start(high_day))
    return Period(field.value, low, min(high, NEVER))
