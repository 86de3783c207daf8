"""A small API client for the emulator's tests: it takes a token and walks listings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from cgsync.emulator import Emulator

NON_RESPONSES = "/v7/rest/sync/non-responses"
RESPONSES = "/v7/rest/sync/responses"
V6_RESPONSES = "/v6/rest/responses"

StartEmulator = Callable[..., Emulator]
"""The type of the shared `emulator` fixture."""


class ApiClient:
    """Talks to one emulator with a fresh bearer token."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.http = httpx.Client(base_url=emulator.base_url, timeout=30)
        self.token = self.new_token()

    def new_token(self) -> str:
        response = self.http.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.emulator.client_id,
                "client_secret": self.emulator.client_secret,
            },
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params, headers={"Authorization": f"Bearer {self.token}"})

    def page(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def walk(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every record of a v7 listing (1000 a page unless `per_page` says otherwise),
        following cursors until an empty page."""
        per_page = params.pop("per_page", 1000)
        records: list[dict[str, Any]] = []
        cursor = params.pop("cursor", None)
        while True:
            extra = {} if cursor is None else {"cursor": cursor}
            body = self.page(path, per_page=per_page, **params, **extra)
            if not body["data"]:
                assert body["cursor"]["next"] == (cursor or 0)
                return records
            records += body["data"]
            cursor = body["cursor"]["next"]

    def walk_v6(self, per_page: int = 400, path: str = V6_RESPONSES) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        params: dict[str, Any] = {"per_page": per_page}
        while True:
            body = self.page(path, **params)
            records += body["data"]
            if body["cursor"]["next"] is None:
                return records
            params["cursor"] = body["cursor"]["next"]

    def close(self) -> None:
        self.http.close()


def cgids(records: list[dict[str, Any]]) -> list[int]:
    return [record["number_customergauge"] for record in records]


Connect = Callable[[Emulator], ApiClient]
"""The type of the `connect` fixture."""
