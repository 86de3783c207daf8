"""Fixtures shared by every part's tests."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from machines import Machine
from sync_lake import DESTINATIONS, EVERY_FORMAT, make_lake

from cgsync._lake import Lake
from cgsync.emulator import Emulator, EmulatorConfig, start_emulator

StartEmulator = Callable[..., Emulator]


@pytest.fixture(autouse=True)
def environment_restored() -> Iterator[None]:
    """Each test ends with the environment it started with: a sync run in-process (the CLI
    tests) tunes `os.environ` for its process (`cgsync._tuning`), not for the tests after it,
    and `--log-format json` sends warnings to logging for that run only (while one test left
    it on, the next test's own switch found it on and pytest's warning capture won)."""
    saved = os.environ.copy()
    yield
    os.environ.clear()
    os.environ.update(saved)
    logging.captureWarnings(False)


@pytest.fixture
def emulator() -> Iterator[StartEmulator]:
    """A factory: `emulator(records=2_000, seed=7, ...)` starts an emulator (any EmulatorConfig
    field; 2,000 records unless told) on a free local port and stops it after the test."""
    with ExitStack() as running:

        def start(**config: Any) -> Emulator:
            config.setdefault("records", 2_000)
            return running.enter_context(start_emulator(EmulatorConfig(**config)))

        yield start


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    """A machine of its own (its dlt directory in tmp_path) to run `cgsync` on as users do."""
    return Machine(tmp_path / "machine")


def _lake_of(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lake]:
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
    with make_lake(request.param, tmp_path) as lake:
        yield lake


@pytest.fixture(params=DESTINATIONS)
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lake]:
    """A fresh lake of each destination: DuckDB, PostgreSQL, Delta."""
    yield from _lake_of(request, tmp_path)


@pytest.fixture(params=EVERY_FORMAT)
def any_format_lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lake]:
    """A fresh lake of each destination and table format: DuckDB, PostgreSQL, Delta, Iceberg."""
    yield from _lake_of(request, tmp_path)
