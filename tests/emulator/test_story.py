"""The story the seeded data tells: a worse touchpoint, an incident month, drivers and tags that
go with the score, response rates that differ by touchpoint and season."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from cgsync.emulator import EmulatorConfig, settings
from cgsync.emulator._population import NEVER, Population

Columns = dict[str, np.ndarray]


@pytest.fixture(scope="module")
def config() -> EmulatorConfig:
    return EmulatorConfig(records=300_000, seed=3)


@pytest.fixture(scope="module")
def population(config: EmulatorConfig) -> Population:
    return Population(config)


@pytest.fixture(scope="module")
def records(population: Population, config: EmulatorConfig) -> Columns:
    return population.columns(population.resident, np.arange(config.records))


def nps(scores: np.ndarray) -> float:
    return float(100 * ((scores >= 9).mean() - (scores <= 6).mean()))


def answered(records: Columns) -> np.ndarray:
    return records["responded"] != NEVER


def months(times: np.ndarray, population: Population) -> np.ndarray:
    """The UTC month of each population time, as 'yyyy-mm'."""
    seconds = times.astype(np.int64) + population.origin
    return seconds.astype("datetime64[s]").astype("datetime64[M]").astype(str)


def test_the_incident_month_is_four_months_before_the_start_in_the_system_zone() -> None:
    assert EmulatorConfig().incident_month == date(2025, 2, 1)
    # 23:30 UTC on 31 March is already 1 April in Amsterdam
    late = EmulatorConfig(start=datetime(2026, 3, 31, 23, 30, tzinfo=UTC))
    assert late.incident_month == date(2025, 12, 1)
    start, end = late.incident_period()
    assert (start.isoformat(), end.isoformat()) == (
        "2025-12-01T00:00:00+01:00",
        "2026-01-01T00:00:00+01:00",
    )


def test_support_is_the_clearly_worse_touchpoint_and_the_worst_segment_value(
    records: Columns,
) -> None:
    scores, answers = records["nps"], answered(records)
    by_value = {
        (field, value): nps(scores[answers & (records[column] == code)])
        for field, column, values in (
            ("Touchpoint", "touchpoint", settings.TOUCHPOINTS),
            ("Country", "country", settings.COUNTRIES),
        )
        for code, value in enumerate(values)
        if value is not None
    }
    worst = min(by_value, key=by_value.__getitem__)
    assert worst == ("Touchpoint", "Support")
    others = [score for key, score in by_value.items() if key[0] == "Touchpoint" and key != worst]
    assert by_value[worst] < min(others) - 20
    assert by_value[("Country", "DE")] > by_value[("Country", "NL")] > by_value[("Country", "FR")]


def test_answers_in_the_incident_month_score_far_lower_than_in_any_other(
    records: Columns, population: Population, config: EmulatorConfig
) -> None:
    answers = answered(records)
    answer_months, scores = (
        months(records["responded"][answers], population),
        records["nps"][answers],
    )
    by_month = {
        month: nps(scores[answer_months == month])
        for month in np.unique(answer_months)
        if (answer_months == month).sum() >= 1_000
    }
    lowest = min(by_month, key=by_month.__getitem__)
    assert lowest == config.incident_month.strftime("%Y-%m")
    assert by_month[lowest] < min(v for m, v in by_month.items() if m != lowest) - 25


def test_delivery_goes_with_detractors_and_ease_of_use_with_promoters(records: Columns) -> None:
    answers = answered(records)
    scores, drivers = records["nps"][answers], records["drivers"][answers]
    names = [name for _, name in settings.DRIVERS]

    def difference(name: str) -> float:
        named = drivers[:, names.index(name)] >= 0
        return nps(scores[named]) - nps(scores[~named])

    differences = {name: difference(name) for name in names}
    assert min(differences, key=differences.__getitem__) == "Delivery"
    assert max(differences, key=differences.__getitem__) == "Ease of Use"
    assert differences["Delivery"] < -40 and differences["Ease of Use"] > 30
    negative = settings.SENTIMENTS.index("negative")
    delivery = drivers[:, names.index("Delivery")]
    detractor_mentions = delivery[(scores <= 6) & (delivery >= 0)]
    assert (detractor_mentions == negative).mean() > 0.6


def test_tags_follow_the_band(records: Columns) -> None:
    answers = answered(records)
    scores, tags = records["nps"][answers], records["tags"][answers]

    def share(tag: str, band: np.ndarray) -> float:
        return float(tags[band, settings.TAGS.index(tag)].mean())

    detractors, promoters = scores <= 6, scores >= 9
    assert share("Delivery", detractors) > 3 * share("Delivery", promoters)
    assert share("Product Quality", promoters) > 3 * share("Product Quality", detractors)


def test_the_response_rate_differs_by_touchpoint_and_season(
    records: Columns, population: Population
) -> None:
    answers = answered(records)
    by_touchpoint = {
        value: float(answers[records["touchpoint"] == code].mean())
        for code, value in enumerate(settings.TOUCHPOINTS)
        if value is not None
    }
    assert by_touchpoint["Onboarding"] > by_touchpoint["Transactional"] > by_touchpoint["Support"]
    assert by_touchpoint["Onboarding"] - by_touchpoint["Support"] > 0.15
    assert 0.33 < answers.mean() < 0.37  # still settings.RESPONSE_RATE overall

    sent = (records["arrival"].astype(np.int64) + population.origin).astype("datetime64[s]")
    month = sent.astype("datetime64[M]").astype(np.int64) % 12 + 1
    january, july = answers[month == 1].mean(), answers[month == 7].mean()
    assert january > july * 1.3
