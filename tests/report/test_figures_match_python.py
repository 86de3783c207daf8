"""Figures of random lakes agree with the same figures counted in plain Python."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgsync.report import NpsScore, build_report

START = datetime(2025, 12, 25, tzinfo=UTC)

answers = st.lists(
    st.tuples(
        st.integers(0, 10),  # nps
        st.integers(0, 60 * 24 * 60 - 1),  # minutes after START: about two months
        st.sampled_from(["NL", "DE", None]),  # country
    ),
    min_size=1,
    max_size=40,
)
days = st.one_of(st.none(), st.dates(date(2025, 12, 20), date(2026, 3, 1)))
zones = st.sampled_from(["UTC", "Europe/Amsterdam", "America/New_York", "Pacific/Kiritimati"])


def _score(scores: list[int]) -> NpsScore:
    return NpsScore(
        promoters=sum(s >= 9 for s in scores),
        passives=sum(7 <= s <= 8 for s in scores),
        detractors=sum(s <= 6 for s in scores),
    )


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(answers=answers, since=days, until=days, timezone=zones)
def test_headline_weeks_and_segments(make_lake, answers, since, until, timezone) -> None:
    if since and until and since > until:
        since, until = until, since
    rows = [
        {
            "number_customergauge": cgid,
            "nps": nps,
            "date_survey_response": START + timedelta(minutes=minutes),
            "properties__country": country,
        }
        for cgid, (nps, minutes, country) in enumerate(answers)
    ]
    figures = build_report(
        duckdb_path=make_lake(rows, []), since=since, until=until, timezone=timezone
    )

    def local_day(row: dict) -> date:
        return row["date_survey_response"].astimezone(ZoneInfo(timezone)).date()

    def in_period(row: dict) -> bool:
        day = local_day(row)
        return (since is None or day >= since) and (until is None or day <= until)

    kept = [row for row in rows if in_period(row)]
    assert figures.headline.score == _score([row["nps"] for row in kept])

    by_bucket: dict[date, list[int]] = {}
    for row in kept:
        day = local_day(row)
        bucket = (
            day - timedelta(days=day.weekday())
            if figures.granularity == "week"
            else day.replace(day=1)
        )
        by_bucket.setdefault(bucket, []).append(row["nps"])
    assert {p.start: p.score for p in figures.over_time if p.score.responses} == {
        bucket: _score(scores) for bucket, scores in by_bucket.items()
    }

    if all(row["properties__country"] is None for row in rows):
        assert figures.segments == ()  # like dlt, the lake has no column without values
        return
    counted = Counter(row["properties__country"] for row in kept)
    (country,) = figures.segments
    assert {v.value: v.score.responses for v in country.values} == dict(counted)
    for value in country.values:
        scores = [row["nps"] for row in kept if row["properties__country"] == value.value]
        assert value.score == _score(scores)
