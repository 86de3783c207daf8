"""The emulator's configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cgsync.emulator import settings
from cgsync.emulator._faults import FaultSettings


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes an emulator; the data is a pure function of it."""

    records: int = settings.DEFAULT_RECORDS
    """Invitations already sent when the clock starts."""
    seed: int = settings.DEFAULT_SEED
    timezone: str = settings.DEFAULT_TIMEZONE
    """The CustomerGauge system's time zone (IANA name); every date is printed in it."""
    start: datetime = settings.DEFAULT_START
    """Where the simulated clock starts (aware)."""
    history_days: int = settings.DEFAULT_HISTORY_DAYS
    """The `records` invitations are spread over this many days before `start`."""
    speed: float = 0.0
    """Simulated seconds per real second; 0 keeps the clock still until advanced."""
    client_id: str = settings.DEFAULT_CLIENT_ID
    client_secret: str = field(default=settings.DEFAULT_CLIENT_SECRET, repr=False)
    faults: FaultSettings = field(default_factory=FaultSettings)
    responses_order: str = "answer"
    """How v7 responses are listed: `answer` (by answer sequence) or `record` (by the survey
    record's key: an answer to an old invitation lands behind a stored cursor)."""
    erasures: float = 0.0
    """The share of records (0 to 1, picked by index and seed) erased at the source, gone from
    every listing and from truth() `settings.ERASE_AFTER` after they were sent."""
    edits: bool = False
    """Change responses after the answer, at fixed delays (`settings.*_EDIT_DELAY`): a comment
    is edited, `follow_up` is set, a tag is added; each to one response in `EDIT_EVERY`."""
    refuse_answer_period: bool = False
    """Answer 422 to `period[field]=date_survey_response`, a parameter known only from another
    client, as the real API might."""
    value_variants: bool = False
    """Print each value in one of the forms the vendor's pages allow (`_variants`): ISO `T`,
    `Z`, offsets, fractions, empty and zero dates, numbers as strings, fields missing, null
    lists. The data, and truth(), stay the same."""

    def __post_init__(self) -> None:
        if self.records < 0:
            raise ValueError(f"records must be 0 or more, got {self.records}")
        if self.seed < 0:
            raise ValueError(f"seed must be 0 or more, got {self.seed}")
        if self.history_days < 1:
            raise ValueError(f"history_days must be 1 or more, got {self.history_days}")
        if self.speed < 0:
            raise ValueError(f"speed must be 0 or more, got {self.speed}")
        if self.start.tzinfo is None:
            raise ValueError("start must be an aware datetime (give it a time zone)")
        if not 0 <= self.erasures <= 1:
            raise ValueError(f"erasures must be a share from 0 to 1, got {self.erasures}")
        if self.responses_order not in settings.RESPONSES_ORDERS:
            orders = " or ".join(settings.RESPONSES_ORDERS)
            raise ValueError(f"responses_order must be {orders}, got {self.responses_order!r}")
        if not self.client_id or not self.client_secret:
            raise ValueError("client_id and client_secret must not be empty")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {self.timezone!r} is not an IANA time zone name") from None
        object.__setattr__(self, "start", self.start.astimezone(UTC))

    @property
    def incident_month(self) -> date:
        """The first day of the month whose answers score far lower (the story's dip)."""
        local = self.start.astimezone(ZoneInfo(self.timezone))
        months = local.year * 12 + local.month - 1 - settings.INCIDENT_MONTHS_BEFORE_START
        return date(months // 12, months % 12 + 1, 1)

    def incident_period(self) -> tuple[datetime, datetime]:
        """The incident month as aware instants: its first moment and the next month's."""
        zone = ZoneInfo(self.timezone)
        first = self.incident_month
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return (
            datetime.combine(first, datetime.min.time(), zone),
            datetime.combine(following, datetime.min.time(), zone),
        )
