"""Bad input gets the real API's error shapes, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cgsync.emulator import Emulator

from ._api import NON_RESPONSES, RESPONSES, V6_RESPONSES, ApiClient

INVALID = "The given data was invalid."


def invalid(api: ApiClient, path: str, **params: Any) -> dict[str, list[str]]:
    """The error bag of a request that must be a 422."""
    response = api.get(path, **params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"] == INVALID
    return dict(body["errors"])


@pytest.mark.parametrize("path", [NON_RESPONSES, RESPONSES])
@pytest.mark.parametrize("per_page", [0, 1001, -5, "ten", "1.5", ""])
def test_v7_per_page_outside_1_to_1000_is_422(api: ApiClient, path: str, per_page: object) -> None:
    errors = invalid(api, path, per_page=per_page)
    assert list(errors) == ["per_page"]


@pytest.mark.parametrize("per_page", [1, 1000])
def test_v7_per_page_bounds_are_inclusive(api: ApiClient, per_page: int) -> None:
    assert len(api.page(NON_RESPONSES, per_page=per_page)["data"]) == per_page


@pytest.mark.parametrize("per_page", [0, 401, "x"])
def test_v6_per_page_outside_1_to_400_is_422(api: ApiClient, per_page: object) -> None:
    assert list(invalid(api, V6_RESPONSES, per_page=per_page)) == ["per_page"]


def test_v6_per_page_400_is_allowed(api: ApiClient) -> None:
    assert len(api.page(V6_RESPONSES, per_page=400)["data"]) == 400


@pytest.mark.parametrize("cursor", ["abc", "-1", "1e3", "12abc"])
def test_a_malformed_v7_cursor_is_422(api: ApiClient, cursor: str) -> None:
    assert list(invalid(api, RESPONSES, cursor=cursor)) == ["cursor"]


@pytest.mark.parametrize("cursor", ["abc", "e30", "eyJudW1iZXJfY3VzdG9tZXJnYXVnZSI6IngifQ", "%%%"])
def test_a_malformed_v6_cursor_is_422(api: ApiClient, cursor: str) -> None:
    assert invalid(api, V6_RESPONSES, cursor=cursor) == {"cursor": ["The cursor is invalid."]}


def test_an_unknown_period_field_is_422(api: ApiClient) -> None:
    period = {"period[field]": "date_survey_response", "period[start]": "2025-01-01"}
    errors = invalid(api, NON_RESPONSES, **period, **{"period[end]": "2025-01-02"})
    assert errors == {"period.field": ["The selected period.field is invalid."]}


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2025-02-30", "2025-03-01", "period.start"),
        ("2025-01-01", "01-02-2025", "period.end"),
        ("2025-01-01", "2024-12-31", "period.end"),
        ("yesterday", "2025-01-01", "period.start"),
    ],
)
def test_a_bad_period_date_is_422(api: ApiClient, start: str, end: str, field: str) -> None:
    params = {"period[field]": "date_sent", "period[start]": start, "period[end]": end}
    assert field in invalid(api, RESPONSES, **params)


def test_a_period_needs_all_three_parameters(api: ApiClient) -> None:
    errors = invalid(api, NON_RESPONSES, **{"period[start]": "2025-01-01"})
    assert set(errors) == {"period.field", "period.end"}


def test_an_unknown_expansion_is_422(api: ApiClient) -> None:
    assert list(invalid(api, NON_RESPONSES, **{"with[]": ["properties", "tags"]})) == ["with.1"]


def test_an_unknown_outbound_filter_is_422(api: ApiClient) -> None:
    assert list(invalid(api, NON_RESPONSES, outbound_filter="country-xx")) == ["outbound_filter"]


def test_authentication_is_checked_before_the_parameters(shared_emulator: Emulator) -> None:
    response = httpx.get(shared_emulator.base_url + RESPONSES, params={"per_page": 0})
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/v7/rest/sync/everything", "/v5/rest/responses", "/"])
def test_an_unknown_path_is_404_with_a_message(api: ApiClient, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


def test_a_wrong_method_is_405_with_a_message(shared_emulator: Emulator) -> None:
    response = httpx.get(shared_emulator.token_url)
    assert response.status_code == 405
    assert response.json()["message"] == "The GET method is not supported for this route."
