"""Every record's fate, drawn once: the bounds the listings rely on, and growth."""

from __future__ import annotations

import numpy as np
import pytest

from cgsync.emulator import EmulatorConfig, settings
from cgsync.emulator._population import NEVER, Population


@pytest.fixture(scope="module")
def population() -> Population:
    return Population(EmulatorConfig(records=100_000, seed=4))


def start_time(population: Population, config: EmulatorConfig) -> int:
    return population.relative(int(config.start.timestamp()))


def test_exactly_the_configured_records_are_sent_when_the_clock_starts() -> None:
    for records in (0, 1, 999, 70_000):
        config = EmulatorConfig(records=records, seed=2)
        population = Population(config)
        sent = population.sent_count(population.resident, start_time(population, config))
        assert sent == records


def test_sending_times_ascend_with_the_key(population: Population) -> None:
    assert (np.diff(population.resident.arrival) >= 0).all()


def test_creation_and_order_dates_precede_sending_within_bounds(population: Population) -> None:
    resident = population.resident
    backdate = resident.arrival - resident.creation
    assert backdate.min() >= 0
    assert backdate.max() <= settings.MAX_BACKDATE
    assert 0.01 < (backdate > settings.DAY).mean() < 0.03  # the late, backdated records
    lead = resident.creation - resident.order
    assert 0 <= lead.min() <= lead.max() <= settings.MAX_ORDER_LEAD


def test_answers_come_after_sending_within_bounds(population: Population) -> None:
    resident = population.resident
    answered = resident.responded != NEVER
    delay = resident.responded[answered] - resident.arrival[answered]
    assert 0 < delay.min() <= delay.max() <= settings.MAX_RESPONSE_DELAY
    assert 0.3 < answered.mean() < 0.4


def test_failures_come_within_48_hours_and_never_answer(population: Population) -> None:
    resident = population.resident
    indexes = np.arange(settings.BLOCK_SIZE)
    columns = population.columns(resident, indexes)
    failed = columns["failed"] != NEVER
    assert failed.any()
    assert (columns["responded"][failed] == NEVER).all()
    delay = columns["failed"][failed] - columns["arrival"][failed]
    assert 0 < delay.min() <= delay.max() <= settings.MAX_FAILURE_DELAY


def test_answering_records_opened_and_clicked_first(population: Population) -> None:
    columns = population.columns(population.resident, np.arange(settings.BLOCK_SIZE))
    answered = columns["responded"] != NEVER
    opened, clicked = columns["opened"][answered], columns["clicked"][answered]
    assert (columns["arrival"][answered] <= opened).all()
    assert (opened <= clicked).all()
    assert (clicked <= columns["responded"][answered]).all()


def test_the_response_order_is_by_answer_time() -> None:
    population = Population(EmulatorConfig(records=5_000, seed=8))
    resident = population.resident
    assert (np.diff(resident.response_times) >= 0).all()
    assert (resident.responded[resident.response_indexes] == resident.response_times).all()


def test_growth_keeps_the_order_of_every_visible_response() -> None:
    config = EmulatorConfig(records=200_000, seed=6, history_days=1)
    population = Population(config)
    now = start_time(population, config)
    visible = population.visible_responses(population.resident, now)
    before = population.resident.response_indexes[:visible].copy()
    later = now + 3 * settings.DAY
    grown = population.ensure(later)
    assert grown.size > 2 * 200_000
    assert (grown.response_indexes[:visible] == before).all()
    assert population.sent_count(grown, later) < grown.size
    assert (np.diff(grown.response_times) >= 0).all()
    assert (grown.responded[grown.response_indexes] == grown.response_times).all()


def test_the_same_seed_draws_the_same_records() -> None:
    config = EmulatorConfig(records=1_000, seed=12)
    first, second = Population(config), Population(config)
    indexes = np.arange(0, 1_000, 7)
    for name, column in first.columns(first.resident, indexes).items():
        assert (column == second.columns(second.resident, indexes)[name]).all(), name
