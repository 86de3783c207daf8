"""The v7 and v6 listings against the emulator's ground truth."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ._api import NON_RESPONSES, RESPONSES, V6_RESPONSES, ApiClient, Connect, StartEmulator, cgids


def test_a_full_non_responses_walk_is_exactly_the_truth(api: ApiClient) -> None:
    truth = api.emulator.truth()
    records = api.walk(NON_RESPONSES, per_page=250)
    assert cgids(records) == sorted(truth.non_responses)
    assert {r["number_customergauge"]: r["status"] for r in records} == truth.non_responses


def test_a_full_responses_walk_is_exactly_the_truth(api: ApiClient) -> None:
    records = api.walk(RESPONSES, per_page=97)
    assert len(cgids(records)) == len(set(cgids(records)))
    assert set(cgids(records)) == api.emulator.truth().responses


def test_v7_responses_are_in_answer_order(api: ApiClient) -> None:
    zone = ZoneInfo(api.emulator.config.timezone)
    previous = datetime.min.replace(tzinfo=UTC)
    for record in api.walk(RESPONSES):
        local = datetime.fromisoformat(record["date_survey_response"])
        # In the hour DST ends a wall-clock time names two instants: take the earliest that fits.
        candidates = sorted(local.replace(tzinfo=zone, fold=fold) for fold in (0, 1))
        previous = next(moment for moment in candidates if moment >= previous)


def test_v7_cursor_next_is_the_last_key_or_sequence_of_the_page(api: ApiClient) -> None:
    first = api.page(NON_RESPONSES, per_page=5)
    assert first["cursor"]["next"] == first["data"][-1]["number_customergauge"] - 1000
    responses = api.page(RESPONSES, per_page=5)
    assert responses["cursor"]["next"] == 5
    following = api.page(RESPONSES, per_page=5, cursor=5)
    assert following["cursor"]["next"] == 10
    assert not set(cgids(responses["data"])) & set(cgids(following["data"]))


@pytest.mark.parametrize("path", [NON_RESPONSES, RESPONSES])
def test_an_empty_page_echoes_the_cursor(api: ApiClient, path: str) -> None:
    assert api.page(path, cursor=10**9) == {"data": [], "cursor": {"next": 10**9}}


def test_a_v6_walk_is_every_response_by_cgid_and_ends_with_a_null_next(api: ApiClient) -> None:
    records = api.walk_v6(per_page=400)
    assert cgids(records) == sorted(api.emulator.truth().responses)


def test_the_v6_path_of_the_vendor_curl_example_serves_the_same(api: ApiClient) -> None:
    assert api.page("/v6/responses", per_page=3) == api.page(V6_RESPONSES, per_page=3)


def test_v6_previous_cursor_leads_back_to_the_page_before(api: ApiClient) -> None:
    first = api.page(V6_RESPONSES, per_page=4)
    assert first["cursor"]["previous"] is None
    second = api.page(V6_RESPONSES, per_page=4, cursor=first["cursor"]["next"])
    back = api.page(V6_RESPONSES, per_page=4, cursor=second["cursor"]["previous"])
    assert cgids(back["data"]) == cgids(first["data"])
    assert back["cursor"]["previous"] is None


def test_full_walks_of_50k_records_are_exactly_the_truth(
    emulator: StartEmulator, connect: Connect
) -> None:
    emu = emulator(records=50_000, seed=21)
    api = connect(emu)
    truth = emu.truth()
    non_responses = api.walk(NON_RESPONSES, **{"with[]": "properties"})
    assert {r["number_customergauge"]: r["status"] for r in non_responses} == truth.non_responses
    assert cgids(non_responses) == sorted(truth.non_responses)
    responses = cgids(api.walk(RESPONSES, **{"with[]": ["tags", "drivers"]}))
    assert len(responses) == len(set(responses))
    assert set(responses) == truth.responses
    assert cgids(api.walk_v6()) == sorted(truth.responses)
