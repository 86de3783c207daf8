"""Fixtures of the emulator's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cgsync.emulator import Emulator, EmulatorConfig, start_emulator

from ._api import ApiClient, Connect


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[Emulator]:
    """One emulator for tests that only read (they must not move its clock or set faults)."""
    with start_emulator(EmulatorConfig(records=3_000, seed=11, history_days=60)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def api(shared_emulator: Emulator) -> Iterator[ApiClient]:
    client = ApiClient(shared_emulator)
    yield client
    client.close()


@pytest.fixture
def connect() -> Iterator[Connect]:
    """`connect(emulator)` -> an ApiClient, closed after the test."""
    clients: list[ApiClient] = []

    def make(emulator: Emulator) -> ApiClient:
        clients.append(ApiClient(emulator))
        return clients[-1]

    yield make
    for client in clients:
        client.close()
