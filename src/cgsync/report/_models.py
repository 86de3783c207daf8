"""The figures of a report, as typed values that the page and `--json` share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from cgsync.report import settings

Granularity = Literal["week", "month"]


@dataclass(frozen=True)
class NpsScore:
    """Scores 0-10 counted into the industry's three bands."""

    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @property
    def responses(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def nps(self) -> float | None:
        """% promoters - % detractors, from -100 to 100; None without responses."""
        if not self.responses:
            return None
        return 100 * (self.promoters - self.detractors) / self.responses


@dataclass(frozen=True)
class Headline:
    score: NpsScore
    invitations: int
    answered: int
    failed: int

    @property
    def response_rate(self) -> float | None:
        """Share (0-1) of the period's invitations that were answered."""
        return self.answered / self.invitations if self.invitations else None

    @property
    def failure_rate(self) -> float | None:
        """Share (0-1) of the period's invitations that bounced, were undeliverable or blocked."""
        return self.failed / self.invitations if self.invitations else None


@dataclass(frozen=True)
class PeriodScore:
    start: date
    score: NpsScore


@dataclass(frozen=True)
class SegmentValue:
    value: str | None
    score: NpsScore

    @property
    def too_few(self) -> bool:
        return self.score.responses < settings.MIN_TRUSTED_RESPONSES


@dataclass(frozen=True)
class Segment:
    column: str
    values: tuple[SegmentValue, ...]

    @property
    def name(self) -> str:
        """The column without its `properties__` prefix: `account_manager_eu`."""
        return self.column.removeprefix(settings.SEGMENT_PREFIX)


@dataclass(frozen=True)
class SegmentFilter:
    """`--segment FIELD=VALUE`: only records whose segment column holds one of `values`."""

    column: str
    values: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.column.removeprefix(settings.SEGMENT_PREFIX)


@dataclass(frozen=True)
class Driver:
    """One driver: the responses that name it, and the responses in the period that don't."""

    name: str
    score: NpsScore
    """Of the responses that name the driver (one mention per response)."""
    positive: int
    negative: int
    """Mentions with that sentiment; the rest are neutral or unset."""
    others: NpsScore
    """Of the period's responses that don't name it."""

    @property
    def mentions(self) -> int:
        return self.score.responses

    @property
    def positive_share(self) -> float | None:
        return self.positive / self.mentions if self.mentions else None

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.mentions if self.mentions else None

    @property
    def nps_difference(self) -> float | None:
        """NPS of the responses naming it minus that of the others; None if either is empty."""
        if self.score.nps is None or self.others.nps is None:
            return None
        return self.score.nps - self.others.nps

    @property
    def too_few(self) -> bool:
        least = min(self.score.responses, self.others.responses)
        return least < settings.MIN_TRUSTED_RESPONSES


@dataclass(frozen=True)
class Topic:
    """A tag among the responses of one band."""

    tag: str
    responses: int
    share: float | None
    """Of the band's responses in the period; None when the band has none."""


@dataclass(frozen=True)
class Topics:
    """The tags most frequent among detractors and among promoters, most frequent first."""

    detractors: tuple[Topic, ...] = ()
    promoters: tuple[Topic, ...] = ()


@dataclass(frozen=True)
class MonthRate:
    """Invitations sent in one month, how many of them were answered, and how quickly."""

    start: date
    invitations: int
    responses: int
    median_hours_to_answer: float | None

    @property
    def response_rate(self) -> float | None:
        return self.responses / self.invitations if self.invitations else None

    @property
    def too_few(self) -> bool:
        return self.invitations < settings.MIN_TRUSTED_RESPONSES


@dataclass(frozen=True)
class Funnel:
    sent: int
    opened: int
    clicked: int
    responded: int
    failed: int


@dataclass(frozen=True)
class DetractorComment:
    number_customergauge: int
    responded_at: datetime
    account: str | None
    nps: int
    comment: str


@dataclass(frozen=True)
class ReportFigures:
    """Everything one report shows; `to_dict()` is what `cgsync report --json` prints."""

    source: str
    since: date | None
    until: date | None
    timezone: str
    """IANA zone of the period's days, the weeks and months, and the comments' times."""
    generated_at: datetime
    headline: Headline
    granularity: Granularity
    over_time: tuple[PeriodScore, ...]
    segments: tuple[Segment, ...]
    funnel: Funnel
    detractor_comments: tuple[DetractorComment, ...]
    filters: tuple[SegmentFilter, ...] = ()
    drivers: tuple[Driver, ...] = ()
    """Ranked by `nps_difference`, highest first (None last)."""
    topics: Topics = Topics()
    response_rate_by_month: tuple[MonthRate, ...] = ()

    @property
    def lowest_period(self) -> PeriodScore | None:
        """The week or month with the lowest NPS among those with enough responses."""
        trusted = [p for p in self.over_time if p.score.responses >= settings.MIN_TRUSTED_RESPONSES]
        return min(trusted, key=lambda p: (p.score.nps, p.start), default=None)

    @property
    def worst_segment(self) -> tuple[Segment, SegmentValue] | None:
        """The segment value with the lowest NPS among those with enough responses."""
        trusted = [
            (segment, value)
            for segment in self.segments
            for value in segment.values
            if not value.too_few and value.value is not None
        ]
        return min(trusted, key=lambda pair: (pair[1].score.nps, pair[0].column), default=None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: dates as ISO strings, rates as 0-1, NPS as -100..100."""
        return {
            "source": self.source,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "timezone": self.timezone,
            "generated_at": _iso(self.generated_at),
            "headline": {
                **_score_dict(self.headline.score),
                "invitations": self.headline.invitations,
                "answered_invitations": self.headline.answered,
                "failed_invitations": self.headline.failed,
                "response_rate": self.headline.response_rate,
                "failure_rate": self.headline.failure_rate,
            },
            "granularity": self.granularity,
            "over_time": [
                {"start": _iso(point.start), **_score_dict(point.score)} for point in self.over_time
            ],
            "segments": [
                {
                    "column": segment.column,
                    "name": segment.name,
                    "values": [
                        {"value": v.value, **_score_dict(v.score), "too_few": v.too_few}
                        for v in segment.values
                    ],
                }
                for segment in self.segments
            ],
            "funnel": dataclasses.asdict(self.funnel),
            "detractor_comments": [
                {**dataclasses.asdict(comment), "responded_at": _iso(comment.responded_at)}
                for comment in self.detractor_comments
            ],
            "filters": [
                {"column": f.column, "name": f.name, "values": list(f.values)} for f in self.filters
            ],
            "drivers": [
                {
                    "name": driver.name,
                    "mentions": driver.mentions,
                    "positive_share": driver.positive_share,
                    "negative_share": driver.negative_share,
                    "nps": driver.score.nps,
                    "nps_difference": driver.nps_difference,
                    "too_few": driver.too_few,
                }
                for driver in self.drivers
            ],
            "topics": {
                band: [dataclasses.asdict(topic) for topic in getattr(self.topics, band)]
                for band in ("detractors", "promoters")
            },
            "response_rate_by_month": [
                {
                    "month": month.start.strftime("%Y-%m"),
                    "invitations": month.invitations,
                    "responses": month.responses,
                    "response_rate": month.response_rate,
                    "median_hours_to_answer": month.median_hours_to_answer,
                    "too_few": month.too_few,
                }
                for month in self.response_rate_by_month
            ],
            "highlights": self._highlights(),
        }

    def highlight_lines(self) -> list[str]:
        """The page's highlights as plain lines (what `cgsync demo` prints): the lowest week or
        month and the worst segment value, each beside the period's NPS."""
        overall = format_nps(self.headline.score.nps)
        lines = []
        if (lowest := self.lowest_period) is not None:
            when = lowest.start.strftime(
                "%B %Y" if self.granularity == "month" else "week of %d %b %Y"
            )
            lines.append(
                f"lowest {self.granularity}: {when}, NPS {format_nps(lowest.score.nps)}"
                f" (all: {overall})"
            )
        if (worst := self.worst_segment) is not None:
            segment, value = worst
            lines.append(
                f"worst segment: {segment.name} = {value.value}, "
                f"NPS {format_nps(value.score.nps)} (all: {overall})"
            )
        return lines

    def _highlights(self) -> dict[str, Any]:
        lowest, worst = self.lowest_period, self.worst_segment
        return {
            "lowest_period": None
            if lowest is None
            else {"start": _iso(lowest.start), **_score_dict(lowest.score)},
            "worst_segment": None
            if worst is None
            else {
                "column": worst[0].column,
                "name": worst[0].name,
                "value": worst[1].value,
                **_score_dict(worst[1].score),
            },
        }


def format_nps(nps: float | None) -> str:
    """A whole NPS, signed when above zero (+12, 0, -7); a dash when there is none."""
    if nps is None:
        return "—"
    whole = round(nps)
    return f"+{whole}" if whole > 0 else str(whole)


def _score_dict(score: NpsScore) -> dict[str, Any]:
    return {
        "nps": score.nps,
        "responses": score.responses,
        "promoters": score.promoters,
        "passives": score.passives,
        "detractors": score.detractors,
    }


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()
