"""What one sync did: counts per resource, API calls, rows in the lake, as a table or JSON."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from cgsync._walks import PageCallback

__all__ = ["PageCounter", "ResourceSummary", "SyncSummary"]


@dataclass
class ResourceSummary:
    """What one resource did in one sync."""

    pages: int = 0
    records: int = 0
    refresh_pages: int = 0
    """Pages of the refresh window: records read again to merge their changes."""
    refresh_records: int = 0
    removed: int = 0
    """Records a reconcile deleted: the API no longer lists them."""
    seconds: float = 0.0
    cursor: Any = None

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass
class SyncSummary:
    """The outcome of one sync, printed as a table or as JSON."""

    pipeline_name: str
    destination: str
    dataset: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = "running"
    error: str | None = None
    checkpoints: int = 0
    resources: dict[str, ResourceSummary] = field(default_factory=dict)
    api_calls: int = 0
    token_calls: int = 0
    retries: dict[str, int] = field(default_factory=dict)
    row_counts: dict[str, int] = field(default_factory=dict)
    open_non_responses: int | None = None
    rejected_values: int = 0
    """Values this sync could not read (NULL in their columns, text in _cgsync_rejected_values)."""
    reconcile: bool = False
    notes: list[str] = field(default_factory=list)
    """What the user should know about how this sync ran, a line each."""

    @property
    def seconds(self) -> float:
        end = self.finished_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        data["seconds"] = round(self.seconds, 3)
        for name, resource in self.resources.items():
            data["resources"][name]["records_per_second"] = round(resource.records_per_second, 1)
        return data


class PageCounter:
    """Counts pages and records per resource, then hands them on to the progress display.

    A resource's seconds run from the start of the sync to its last page (its first page
    took time too, and resources are walked side by side).
    """

    def __init__(self, summary: SyncSummary, forward: PageCallback | None) -> None:
        self._summary = summary
        self._forward = forward
        self._started = time.monotonic()

    def __call__(self, resource: str, records: int) -> None:
        counts = self._summary.resources[resource]
        counts.pages += 1
        counts.records += records
        counts.seconds = time.monotonic() - self._started
        if self._forward is not None:
            self._forward(resource, records)

    def refresh(self, resource: str, records: int) -> None:
        """A page of a refresh window: records read again, counted apart."""
        counts = self._summary.resources[resource]
        counts.refresh_pages += 1
        counts.refresh_records += records
        counts.seconds = time.monotonic() - self._started
