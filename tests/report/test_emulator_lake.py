"""The report of a lake synced from the emulator, as a user runs both: its figures agree with the
same figures counted in plain Python from the lake's rows, and they tell the emulator's story."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from cgsync.report import NpsScore, ReportFigures, build_report

if TYPE_CHECKING:
    from .conftest import SyncedLake


@pytest.fixture(scope="module")
def figures(synced: SyncedLake) -> ReportFigures:
    return build_report(duckdb_path=synced.path, timezone=synced.config.timezone)


def rounded(value: Any) -> Any:
    """`value` with every float rounded to 9 places, for exact comparisons of nested values."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(rounded(item) for item in value)
    return value


def score(values: list[int]) -> NpsScore:
    return NpsScore(
        sum(v >= 9 for v in values), sum(7 <= v <= 8 for v in values), sum(v <= 6 for v in values)
    )


def test_the_lowest_month_is_the_incident_and_the_worst_segment_support(
    synced: SyncedLake, figures: ReportFigures
) -> None:
    assert figures.granularity == "month"
    assert figures.lowest_period is not None
    assert figures.lowest_period.start == synced.config.incident_month
    assert figures.worst_segment is not None
    segment, value = figures.worst_segment
    assert (segment.name, value.value) == ("touchpoint", "Support")
    highlights = figures.to_dict()["highlights"]
    assert highlights["lowest_period"]["start"] == synced.config.incident_month.isoformat()
    assert highlights["worst_segment"]["value"] == "Support"


def test_drivers_agree_with_plain_python(synced: SyncedLake, figures: ReportFigures) -> None:
    nps = dict(synced.rows("SELECT number_customergauge, nps FROM responses WHERE nps IS NOT NULL"))
    named: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for cgid, name, sentiment in synced.rows(
        "SELECT number_customergauge, name, sentiment FROM responses__drivers"
    ):
        if cgid in nps and name is not None:
            named[name][cgid].add((sentiment or "").lower())
    expected = {}
    for name, responses in named.items():
        mentioning = score([nps[cgid] for cgid in responses])
        others = score([s for cgid, s in nps.items() if cgid not in responses])
        assert mentioning.nps is not None and others.nps is not None
        expected[name] = (
            len(responses),
            sum("positive" in s for s in responses.values()) / len(responses),
            sum("negative" in s for s in responses.values()) / len(responses),
            mentioning.nps,
            mentioning.nps - others.nps,
        )
    got = {
        d.name: (d.mentions, d.positive_share, d.negative_share, d.score.nps, d.nps_difference)
        for d in figures.drivers
    }
    assert rounded(got) == rounded(expected)
    ranked = [d.name for d in figures.drivers]
    assert ranked == sorted(expected, key=lambda name: -expected[name][4])
    assert (ranked[0], ranked[-1]) == ("Ease of Use", "Delivery")


def test_topics_agree_with_plain_python(synced: SyncedLake, figures: ReportFigures) -> None:
    nps = dict(synced.rows("SELECT number_customergauge, nps FROM responses WHERE nps IS NOT NULL"))
    tagged = set(synced.rows("SELECT number_customergauge, value FROM responses__tags"))
    for band, in_band in (("detractors", lambda s: s <= 6), ("promoters", lambda s: s >= 9)):
        members = {cgid for cgid, s in nps.items() if in_band(s)}
        counts = Counter(tag for cgid, tag in tagged if cgid in members and tag)
        top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:8]
        got = [(t.tag, t.responses, t.share) for t in getattr(figures.topics, band)]
        assert rounded(got) == rounded([(tag, n, n / len(members)) for tag, n in top])
    assert figures.topics.detractors[0].tag == "Delivery"
    assert figures.topics.promoters[0].tag == "Product Quality"


def test_response_rate_by_month_agrees_with_plain_python(
    synced: SyncedLake, figures: ReportFigures
) -> None:
    by_month: dict[date, list[datetime | None]] = defaultdict(list)
    delays: dict[date, list[float]] = defaultdict(list)
    for sent, responded in synced.rows("SELECT date_sent, date_responded FROM survey_funnel"):
        month = sent.astimezone(ZoneInfo(synced.config.timezone)).date().replace(day=1)
        by_month[month].append(responded)
        if responded is not None:
            delays[month].append((responded - sent).total_seconds() / 3600)
    got = {
        m.start: (m.invitations, m.responses, m.median_hours_to_answer)
        for m in figures.response_rate_by_month
        if m.invitations
    }
    expected = {
        month: (
            len(answers),
            sum(a is not None for a in answers),
            statistics.median(delays[month]) if delays[month] else None,
        )
        for month, answers in by_month.items()
    }
    assert rounded(got) == rounded(expected)
    rates = {m.start: m.response_rate for m in figures.response_rate_by_month if not m.too_few}
    january = [rate for month, rate in rates.items() if month.month == 1]
    july = [rate for month, rate in rates.items() if month.month == 7]
    assert min(january) > max(july)  # the season moves the response rate


def test_a_segment_filter_keeps_only_its_records(synced: SyncedLake) -> None:
    support = build_report(
        duckdb_path=synced.path,
        timezone=synced.config.timezone,
        segment_filters=[("Touchpoint", "Support")],
    )
    scores = [
        s
        for (s,) in synced.rows(
            "SELECT nps FROM responses WHERE properties__touchpoint = 'Support' AND nps IS NOT NULL"
        )
    ]
    assert support.headline.score == score(scores)
    ((sent,),) = synced.rows(
        "SELECT COUNT(*) FROM survey_funnel WHERE properties__touchpoint = 'Support'"
    )
    assert support.funnel.sent == sent
    (touchpoint,) = (s for s in support.segments if s.name == "touchpoint")
    assert [v.value for v in touchpoint.values] == ["Support"]
