"""Figures of the fixed lake (conftest.py), worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from cgsync import ConfigError
from cgsync.report import NpsScore, SegmentFilter, Topic, Topics, build_report
from cgsync.report._models import format_nps


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def test_headline_counts_bands_and_invitations(lake_path: Path) -> None:
    figures = build_report(duckdb_path=lake_path)
    headline = figures.headline
    # promoters 1,2,8,9; passive 3; detractors 4,5,6,7,10: 40% - 50% = -10
    assert headline.score == NpsScore(promoters=4, passives=1, detractors=5)
    assert headline.score.nps == -10
    # 15 distinct CGIDs invited (1-10 answered, 11-15 not); 14 and 15 failed
    assert (headline.invitations, headline.answered, headline.failed) == (15, 10, 2)
    assert headline.response_rate == pytest.approx(10 / 15)
    assert headline.failure_rate == pytest.approx(2 / 15)


def test_nps_over_time_by_week_with_a_week_of_only_detractors(lake_path: Path) -> None:
    figures = build_report(duckdb_path=lake_path)
    assert figures.granularity == "week"
    assert [(p.start, p.score.responses, p.score.nps) for p in figures.over_time] == [
        (date(2026, 1, 5), 5, 0.0),  # 2 promoters, 2 detractors of 5
        (date(2026, 1, 12), 2, -100.0),  # 6 (0) and 7 (5): only detractors
        (date(2026, 1, 19), 3, pytest.approx(100 / 3)),  # 2 promoters, 1 detractor of 3
    ]


def test_long_spans_are_charted_by_month_with_empty_months(make_lake) -> None:
    def answer(cgid: int, nps: int, day: datetime) -> dict:
        return {"number_customergauge": cgid, "nps": nps, "date_survey_response": day}

    lake = make_lake(
        [
            answer(1, 10, datetime(2026, 1, 15, tzinfo=UTC)),
            answer(2, 0, datetime(2026, 8, 10, tzinfo=UTC)),
        ],
        [],
    )
    figures = build_report(duckdb_path=lake)
    assert figures.granularity == "month"  # 207 days > 182
    assert [p.start.month for p in figures.over_time] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [p.score.nps for p in figures.over_time] == [100, *[None] * 6, -100]


def test_days_and_weeks_follow_the_chosen_time_zone(make_lake) -> None:
    # Sunday 11 Jan 2026 23:30 UTC is Monday 12 Jan 00:30 in Amsterdam (UTC+1)
    late = datetime(2026, 1, 11, 23, 30, tzinfo=UTC)
    row = {"number_customergauge": 1, "nps": 0, "date_survey_response": late, "comment": "late"}
    lake = make_lake([row], [])
    monday = {"since": date(2026, 1, 12), "until": date(2026, 1, 12)}

    in_utc = build_report(duckdb_path=lake)
    assert [p.start for p in in_utc.over_time] == [date(2026, 1, 5)]
    assert build_report(duckdb_path=lake, **monday).headline.score.responses == 0

    in_amsterdam = build_report(duckdb_path=lake, timezone="Europe/Amsterdam")
    assert [p.start for p in in_amsterdam.over_time] == [date(2026, 1, 12)]
    assert in_amsterdam.detractor_comments[0].responded_at.isoformat() == (
        "2026-01-12T00:30:00+01:00"
    )
    monday_in_amsterdam = build_report(duckdb_path=lake, timezone="Europe/Amsterdam", **monday)
    assert monday_in_amsterdam.headline.score.responses == 1


def test_segments_count_each_value_and_keep_values_nobody_answered(lake_path: Path) -> None:
    figures = build_report(duckdb_path=lake_path)
    by_name = {
        s.name: [(v.value, v.score.responses, v.score.nps) for v in s.values]
        for s in figures.segments
    }
    assert by_name["country"] == [
        # failed 15 (NL) and 14 (DE) have a NULL nps: invited, not responses
        ("NL", 5, 20.0),  # 1,2,9 promote, 4,7 detract: 60% - 40%
        ("DE", 3, pytest.approx(-200 / 3)),  # 3 passive, 5,6 detract: 0% - 66.7%
        ("GB", 2, 0.0),  # 8 promotes, 10 detracts
        ("US", 0, None),  # invited (12, 13), never answered
    ]
    assert by_name["division"] == [
        ("Retail", 5, 0.0),  # 1,2 promote, 4,5 detract
        (None, 5, -20.0),  # 6-10: 8,9 promote, 6,7,10 detract: 40% - 60%
    ]
    assert all(v.too_few for s in figures.segments for v in s.values)


def test_segment_values_under_30_responses_are_marked_too_few(make_lake) -> None:
    answered = datetime(2026, 2, 2, tzinfo=UTC)
    rows = [
        {
            "number_customergauge": cgid,
            "nps": 9,
            "date_survey_response": answered,
            "properties__touchpoint": "Onboarding" if cgid < 30 else "Support",
        }
        for cgid in range(59)
    ]
    figures = build_report(duckdb_path=make_lake(rows, []))
    (touchpoint,) = figures.segments
    assert [(v.value, v.score.responses, v.too_few) for v in touchpoint.values] == [
        ("Onboarding", 30, False),
        ("Support", 29, True),
    ]


@pytest.mark.parametrize("name", ["Division", "division", "properties__division"])
def test_one_segment_can_be_chosen_by_field_or_column_name(lake_path: Path, name: str) -> None:
    figures = build_report(duckdb_path=lake_path, segment=name)
    assert [s.column for s in figures.segments] == ["properties__division"]


def test_an_unknown_segment_names_the_known_ones(lake_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="unknown --segment 'Region'; the lake has: country, division"
    ):
        build_report(duckdb_path=lake_path, segment="Region")


def test_funnel_stages_include_later_stages_and_failures(lake_path: Path) -> None:
    funnel = build_report(duckdb_path=lake_path).funnel
    # opened: 10 responders + 12 (opened) + 13 (clicked); clicked: 10 responders + 13
    assert (funnel.sent, funnel.opened, funnel.clicked, funnel.responded, funnel.failed) == (
        15,
        12,
        11,
        10,
        2,
    )


def test_latest_detractor_comments_skip_blank_and_missing_ones(lake_path: Path) -> None:
    comments = build_report(duckdb_path=lake_path).detractor_comments
    assert [(c.number_customergauge, c.account, c.nps, c.comment) for c in comments] == [
        (10, "Umbrella & Co", 2, "<script>alert(1)</script>"),
        (6, "Initech", 0, "Broken invoice link"),
        (4, "ACME", 3, "Too slow"),  # 5 is blank, 7 has none, 1 is a promoter
    ]
    assert comments[0].responded_at == datetime(2026, 1, 21, 8, tzinfo=UTC)


def test_period_keeps_responses_by_answer_date_and_invitations_by_send_date(
    lake_path: Path,
) -> None:
    figures = build_report(duckdb_path=lake_path, since=date(2026, 1, 12), until=date(2026, 1, 18))
    # answered in the week: 6 (0) and 7 (5)
    assert figures.headline.score == NpsScore(promoters=0, passives=0, detractors=2)
    # sent in the week: 6, 7, 8 (answered 19th) and 13, 14 (bounced)
    assert (figures.headline.invitations, figures.headline.answered) == (5, 3)
    assert figures.headline.failed == 1
    assert [(p.start, p.score.nps) for p in figures.over_time] == [(date(2026, 1, 12), -100.0)]
    assert [c.number_customergauge for c in figures.detractor_comments] == [6]


def test_a_period_without_data_has_no_nps(lake_path: Path) -> None:
    figures = build_report(duckdb_path=lake_path, since=date(2025, 1, 1), until=date(2025, 1, 31))
    assert figures.headline.score.responses == 0
    assert figures.headline.score.nps is None
    assert figures.headline.response_rate is None


def test_since_after_until_is_refused(lake_path: Path) -> None:
    with pytest.raises(ConfigError, match="--since 2026-02-01 is after --until 2026-01-01"):
        build_report(duckdb_path=lake_path, since=date(2026, 2, 1), until=date(2026, 1, 1))


def test_to_dict_is_what_json_scripts_read(lake_path: Path) -> None:
    data = build_report(duckdb_path=lake_path, segment="country").to_dict()
    assert data["source"] == f"duckdb {lake_path}, dataset customergauge"
    assert data["headline"]["nps"] == -10
    assert data["headline"]["response_rate"] == pytest.approx(2 / 3)
    assert data["over_time"][1] == {
        "start": "2026-01-12",
        "nps": -100.0,
        "responses": 2,
        "promoters": 0,
        "passives": 0,
        "detractors": 2,
    }
    assert data["segments"][0]["values"][-1] == {
        "value": "US",
        "nps": None,
        "responses": 0,
        "promoters": 0,
        "passives": 0,
        "detractors": 0,
        "too_few": True,
    }
    assert data["detractor_comments"][0]["responded_at"] == "2026-01-21T08:00:00+00:00"


def test_answers_are_read_from_the_v6_table_when_there_is_no_v7_one(make_lake) -> None:
    answered = datetime(2026, 2, 2, tzinfo=UTC)
    rows = [
        {"number_customergauge": 1, "nps": 10, "date_survey_response": answered},
        {"number_customergauge": 2, "nps": 4, "date_survey_response": answered},
    ]
    figures = build_report(duckdb_path=make_lake(rows, [], responses_table="responses_v6"))
    assert figures.headline.score == NpsScore(promoters=1, passives=0, detractors=1)


def test_drivers_compare_the_nps_of_responses_naming_them_with_the_others(
    lake_path: Path,
) -> None:
    drivers = build_report(duckdb_path=lake_path).drivers
    assert [
        (d.name, d.mentions, d.positive_share, d.negative_share, d.score.nps, d.nps_difference)
        for d in drivers
    ] == [
        # 1, 2, 8 promote, 7 detracts: +50; the other six: 9 promotes, 4, 5, 6, 10 detract: -50
        ("Ease of use", 4, 0.75, 0.0, 50.0, 100.0),
        # 1 promotes, 4 (named twice, counted once), 6, 10 detract: -50; the other six: +1/6
        ("Delivery", 4, 0.25, 0.75, -50.0, pytest.approx(-50 - 100 / 6)),
        # 5 detracts (sentiment "Negative"); the other nine: 4 promoters, 4 detractors
        ("Price", 1, 0.0, 1.0, -100.0, -100.0),
    ]
    assert all(d.too_few for d in drivers)


def test_a_driver_everyone_names_has_no_difference_and_divides_nothing_by_zero(
    make_lake,
) -> None:
    answered = datetime(2026, 2, 2, tzinfo=UTC)
    rows = [
        {"number_customergauge": cgid, "nps": 10, "date_survey_response": answered}
        for cgid in (1, 2)
    ]
    drivers = [
        {"number_customergauge": cgid, "position": 0, "name": "Support", "sentiment": None}
        for cgid in (1, 2)
    ]
    lake = make_lake(rows, [], children={"drivers": drivers})
    (driver,) = build_report(duckdb_path=lake).drivers
    assert (driver.mentions, driver.score.nps, driver.others.responses) == (2, 100.0, 0)
    assert driver.nps_difference is None
    assert (driver.positive_share, driver.negative_share) == (0.0, 0.0)
    empty = build_report(duckdb_path=lake, since=date(2025, 1, 1), until=date(2025, 1, 2))
    assert empty.drivers == ()
    assert empty.topics.detractors == empty.topics.promoters == ()


def test_a_lake_without_driver_or_tag_tables_has_none(make_lake) -> None:
    answered = datetime(2026, 2, 2, tzinfo=UTC)
    rows = [{"number_customergauge": 1, "nps": 3, "date_survey_response": answered}]
    figures = build_report(duckdb_path=make_lake(rows, []))
    assert figures.drivers == ()
    assert figures.topics == Topics()


def test_topics_are_the_tags_most_frequent_among_detractors_and_promoters(
    lake_path: Path,
) -> None:
    topics = build_report(duckdb_path=lake_path).topics
    # five detractors (4, 5, 6, 7, 10) and four promoters (1, 2, 8, 9); 3 is a passive
    assert topics.detractors == (Topic("Billing", 3, 0.6), Topic("Delivery", 2, 0.4))
    assert topics.promoters == (
        Topic("Ease", 2, 0.5),
        Topic("Billing", 1, 0.25),
        Topic("Quality", 1, 0.25),  # named twice by 9, counted once
    )


def test_response_rate_by_month_counts_invitations_by_month_sent(make_lake) -> None:
    def invited(cgid: int, sent: str, hours_to_answer: float | None) -> tuple[dict, dict | None]:
        invitation = {"number_customergauge": cgid, "status": "survey-sent", "date_sent": at(sent)}
        if hours_to_answer is None:
            return invitation, None
        answered = at(sent) + timedelta(hours=hours_to_answer)
        return invitation, {
            "number_customergauge": cgid,
            "nps": 9,
            "date_survey_response": answered,
        }

    pairs = [
        invited(1, "2026-02-01 01:00", 1),
        invited(2, "2026-02-10 10:00", 3),
        invited(3, "2026-02-28 23:00", 50),  # answered in March, counted in February
        invited(4, "2026-02-11 10:00", None),
        invited(5, "2026-04-02 10:00", 2),
        invited(6, "2026-04-03 10:00", 4),
    ]
    lake = make_lake([r for _, r in pairs if r], [i for i, _ in pairs])
    months = build_report(duckdb_path=lake).response_rate_by_month
    assert [
        (m.start, m.invitations, m.responses, m.response_rate, m.median_hours_to_answer)
        for m in months
    ] == [
        (date(2026, 2, 1), 4, 3, 0.75, 3.0),
        (date(2026, 3, 1), 0, 0, None, None),  # a month without invitations is shown
        (date(2026, 4, 1), 2, 2, 1.0, 3.0),  # between 2 and 4 hours
    ]
    assert all(m.too_few for m in months)
    # In New York, 23:00 UTC on 28 Feb is still February; 01:00 on 1 Feb is January
    in_new_york = build_report(duckdb_path=lake, timezone="America/New_York")
    assert [m.start.month for m in in_new_york.response_rate_by_month] == [1, 2, 3, 4]


def test_segment_filters_keep_only_the_matching_records_in_every_figure(
    lake_path: Path,
) -> None:
    netherlands = build_report(duckdb_path=lake_path, segment_filters=[("Country", "NL")])
    assert netherlands.filters == (SegmentFilter("properties__country", ("NL",)),)
    # NL answers: 1 (10), 2 (9), 4 (3), 7 (5), 9 (9)
    assert netherlands.headline.score == NpsScore(promoters=3, passives=0, detractors=2)
    # NL invitations: the five answered, 11 and 15 (blocked)
    assert (netherlands.funnel.sent, netherlands.funnel.responded, netherlands.funnel.failed) == (
        7,
        5,
        1,
    )
    delivery = next(d for d in netherlands.drivers if d.name == "Delivery")
    assert (delivery.mentions, delivery.score.nps) == (2, 0.0)  # 1 promotes, 4 detracts
    assert [c.number_customergauge for c in netherlands.detractor_comments] == [4]
    (country, _division) = netherlands.segments
    assert [v.value for v in country.values] == ["NL"]
    assert [(m.invitations, m.responses) for m in netherlands.response_rate_by_month] == [(7, 5)]

    either = build_report(
        duckdb_path=lake_path, segment_filters=[("country", "NL"), ("Country", "GB")]
    )
    assert either.headline.score == NpsScore(promoters=4, passives=0, detractors=3)  # + 8, 10
    both = build_report(
        duckdb_path=lake_path, segment_filters=[("Country", "NL"), ("Division", "Retail")]
    )
    assert both.headline.score == NpsScore(promoters=2, passives=0, detractors=1)  # 1, 2, 4


def test_a_filter_on_a_field_only_invitations_have_keeps_no_responses(make_lake) -> None:
    answered = datetime(2026, 2, 2, tzinfo=UTC)
    responses = [{"number_customergauge": 1, "nps": 9, "date_survey_response": answered}]
    invitations = [
        {"number_customergauge": 2, "status": "survey-sent", "date_sent": answered,
         "properties__region": "North"},
    ]  # fmt: skip
    figures = build_report(
        duckdb_path=make_lake(responses, invitations), segment_filters=[("Region", "North")]
    )
    assert figures.headline.score.responses == 0
    assert figures.funnel.sent == 1


def test_an_unknown_filter_field_names_the_known_ones(lake_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown --segment 'Region'; the lake has: country"):
        build_report(duckdb_path=lake_path, segment_filters=[("Region", "North")])


def test_the_lowest_period_and_the_worst_segment_need_30_responses(make_lake) -> None:
    def answers(first: int, count: int, nps: int, day: str, touchpoint: str) -> list[dict]:
        return [
            {"number_customergauge": first + n, "nps": nps, "date_survey_response": at(day),
             "properties__touchpoint": touchpoint}
            for n in range(count)
        ]  # fmt: skip

    rows = [
        *answers(0, 30, 9, "2026-01-05 10:00", "Relationship"),
        *answers(100, 30, 3, "2026-01-12 10:00", "Support"),  # the lowest week, the worst value
        *answers(200, 5, 0, "2026-01-19 10:00", "Onboarding"),  # lower, but too few
    ]
    figures = build_report(duckdb_path=make_lake(rows, []))
    assert figures.lowest_period is not None
    assert (figures.lowest_period.start, figures.lowest_period.score.nps) == (
        date(2026, 1, 12),
        -100.0,
    )
    assert figures.worst_segment is not None
    segment, value = figures.worst_segment
    assert (segment.name, value.value, value.score.responses) == ("touchpoint", "Support", 30)
    # 30 promoters, 30 detractors and 5 more: the period's NPS is -8.
    assert figures.highlight_lines() == [
        "lowest week: week of 12 Jan 2026, NPS -100 (all: -8)",
        "worst segment: touchpoint = Support, NPS -100 (all: -8)",
    ]
    few = build_report(duckdb_path=make_lake(rows[:20], []))
    assert few.lowest_period is None and few.worst_segment is None
    assert few.highlight_lines() == []


def test_an_nps_is_shown_whole_and_signed_above_zero() -> None:
    assert [format_nps(n) for n in (12.4, 0.3, -0.4, -7.6, None)] == ["+12", "0", "0", "-8", "—"]
