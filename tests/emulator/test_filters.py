"""The v7 filters: period, CGID and outbound filter give exactly the matching records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cgsync.emulator import settings

from ._api import NON_RESPONSES, RESPONSES, ApiClient, StartEmulator, cgids

Walk = list[dict[str, Any]]


@pytest.fixture(scope="module")
def everything(api: ApiClient) -> dict[str, Walk]:
    """Full unfiltered walks, with properties, to filter by hand."""
    return {path: api.walk(path, **{"with[]": "properties"}) for path in (NON_RESPONSES, RESPONSES)}


def period(field: str, start: str, end: str) -> dict[str, str]:
    return {"period[field]": field, "period[start]": start, "period[end]": end}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (NON_RESPONSES, "date_sent"),
        (NON_RESPONSES, "date_creation"),
        (NON_RESPONSES, "date_order"),
        (RESPONSES, "date_sent"),
        (RESPONSES, "date_creation"),
        (RESPONSES, "date_order"),
        (RESPONSES, "date_survey_response"),
    ],
)
def test_a_period_keeps_records_whose_local_date_is_within_it(
    api: ApiClient, everything: dict[str, Walk], path: str, field: str
) -> None:
    day_of = local_day(api, field)
    days = sorted(day_of(record) for record in everything[path])
    start, end = days[len(days) // 3], days[len(days) // 2]
    filtered = api.walk(path, per_page=50, **period(field, start, end), **{"with[]": "properties"})
    assert filtered == [r for r in everything[path] if start <= day_of(r) <= end]
    assert filtered


def local_day(api: ApiClient, field: str) -> Callable[[dict[str, Any]], str]:
    """The local yyyy-mm-dd of a record's `field` (responses carry no date_sent: ask the truth)."""
    if field != "date_sent":
        return lambda record: str(record[field][:10])
    zone = ZoneInfo(api.emulator.config.timezone)
    sent = api.emulator.truth().date_sent
    return lambda record: sent[record["number_customergauge"]].astimezone(zone).date().isoformat()


def test_a_period_of_one_day_includes_both_ends(
    api: ApiClient, everything: dict[str, Walk]
) -> None:
    day = everything[NON_RESPONSES][100]["date_sent"][:10]
    filtered = api.walk(NON_RESPONSES, **period("date_sent", day, day))
    assert filtered
    assert {r["date_sent"][:10] for r in filtered} == {day}


def test_a_period_outside_the_data_is_empty(api: ApiClient) -> None:
    assert api.walk(RESPONSES, **period("date_creation", "1999-01-01", "1999-12-31")) == []
    assert api.walk(RESPONSES, **period("date_order", "2999-01-01", "2999-12-31")) == []


def test_the_cgid_filter_finds_one_record(api: ApiClient, everything: dict[str, Walk]) -> None:
    for path in (NON_RESPONSES, RESPONSES):
        wanted = everything[path][len(everything[path]) // 2]
        found = api.walk(path, **{settings.CGID_FILTER_PARAM: wanted["number_customergauge"]})
        assert found == [{k: v for k, v in wanted.items() if k != "properties"}]


def test_the_cgid_filter_of_a_record_in_the_other_listing_is_empty(
    api: ApiClient, everything: dict[str, Walk]
) -> None:
    answered = everything[RESPONSES][0]["number_customergauge"]
    assert api.walk(NON_RESPONSES, **{settings.CGID_FILTER_PARAM: answered}) == []
    assert api.walk(RESPONSES, **{settings.CGID_FILTER_PARAM: 5}) == []


@pytest.mark.parametrize("name", sorted(settings.OUTBOUND_FILTERS))
def test_an_outbound_filter_keeps_records_with_its_segment_value(
    api: ApiClient, everything: dict[str, Walk], name: str
) -> None:
    field, reference = settings.OUTBOUND_FILTERS[name]
    for path in (NON_RESPONSES, RESPONSES):
        filtered = api.walk(path, per_page=100, outbound_filter=name)
        expected = [
            r["number_customergauge"]
            for r in everything[path]
            if {"field": field, "reference": reference} in r["properties"]
        ]
        assert cgids(filtered) == expected
        assert expected


def test_filters_combine(api: ApiClient, everything: dict[str, Walk]) -> None:
    day = everything[RESPONSES][200]["date_survey_response"][:10]
    filtered = api.walk(
        RESPONSES, outbound_filter="country-nl", **period("date_survey_response", day, day)
    )
    expected = [
        r["number_customergauge"]
        for r in everything[RESPONSES]
        if r["date_survey_response"][:10] == day
        and {"field": "Country", "reference": "NL"} in r["properties"]
    ]
    assert cgids(filtered) == expected


def test_responses_listed_by_record_hold_a_late_answer_behind_the_cursor(
    emulator: StartEmulator,
) -> None:
    by_answer = ApiClient(emulator(records=3_000, seed=9, history_days=20))
    by_record_emulator = emulator(records=3_000, seed=9, history_days=20, responses_order="record")
    by_record = ApiClient(by_record_emulator)

    listed = cgids(by_record.walk(RESPONSES))
    assert listed == sorted(listed), "by the survey record's key"
    assert sorted(listed) == sorted(cgids(by_answer.walk(RESPONSES)))
    end = by_record.page(RESPONSES, per_page=1000)["cursor"]["next"]
    while (page := by_record.page(RESPONSES, per_page=1000, cursor=end))["data"]:
        end = page["cursor"]["next"]
    by_record_emulator.clock.advance(timedelta(days=2))
    new = cgids(by_record.walk(RESPONSES, cursor=end))
    late = set(cgids(by_record.walk(RESPONSES))) - set(listed) - set(new)
    assert late, "answers to invitations behind the cursor"
    recent = {
        "period[field]": "date_survey_response",
        "period[start]": "2025-06-01",
        "period[end]": "2999-12-31",
    }
    assert late <= set(cgids(by_record.walk(RESPONSES, **recent))), "the answer period has them"
