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
        }


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
