"""The endpoint table and the checks made before any call."""

from __future__ import annotations

import pytest

from cgsync import ConfigError
from cgsync._endpoints import ENDPOINTS, get_endpoint, parse_resources
from cgsync.settings import DEFAULT_RESOURCES


def test_the_table_drives_three_resources() -> None:
    rows = {
        name: (e.path, e.version, e.page_limit, e.cursor_kind, e.record_kind)
        for name, e in ENDPOINTS.items()
    }
    assert rows == {
        "responses": ("/v7/rest/sync/responses", 7, 1000, "int", "response"),
        "non_responses": ("/v7/rest/sync/non-responses", 7, 1000, "int", "non_response"),
        "responses_v6": ("/v6/rest/responses", 6, 400, "opaque", "response"),
    }
    assert all(endpoint.resource == name for name, endpoint in ENDPOINTS.items())
    assert set(DEFAULT_RESOURCES) <= set(ENDPOINTS)


@pytest.mark.parametrize("resource", list(ENDPOINTS))
def test_per_page_accepts_one_to_the_page_limit(resource: str) -> None:
    endpoint = ENDPOINTS[resource]
    assert endpoint.check_per_page(1) == 1
    assert endpoint.check_per_page(endpoint.page_limit) == endpoint.page_limit
    for wrong in (0, endpoint.page_limit + 1):
        with pytest.raises(ConfigError, match=f"use 1 to {endpoint.page_limit}"):
            endpoint.check_per_page(wrong)


def test_resources_parse_from_a_comma_separated_list() -> None:
    chosen = parse_resources(" non_responses,responses,non_responses ")
    assert [endpoint.resource for endpoint in chosen] == ["non_responses", "responses"]


@pytest.mark.parametrize("names", ["responses,answers", "", " , "])
def test_unknown_or_no_resources_name_the_known_ones(names: str) -> None:
    with pytest.raises(ConfigError, match="responses, non_responses, responses_v6"):
        parse_resources(names)


def test_get_endpoint_refuses_an_unknown_resource() -> None:
    with pytest.raises(ConfigError, match="unknown resource 'survey'"):
        get_endpoint("survey")


def test_expansions_are_checked_per_endpoint() -> None:
    responses = ENDPOINTS["responses"]
    assert responses.check_expansions(["tags", "properties", "tags"]) == ("tags", "properties")
    with pytest.raises(ConfigError, match="--with drivers is not available for non_responses"):
        ENDPOINTS["non_responses"].check_expansions(["properties", "drivers"])
    with pytest.raises(ConfigError, match="allowed: none"):
        ENDPOINTS["responses_v6"].check_expansions(["tags"])


def test_period_fields_are_checked_per_endpoint() -> None:
    non_responses = ENDPOINTS["non_responses"]
    assert non_responses.check_period_field("date_sent") == "date_sent"
    with pytest.raises(ConfigError, match="allowed: date_creation, date_order, date_sent"):
        non_responses.check_period_field("date_opened")
