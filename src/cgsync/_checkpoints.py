"""The walk and checkpoint state: what a resource's walks keep in dlt's resource state, and
what one checkpoint takes of them.

The resource state is a JSON dict that dlt commits with the data of the same load package
(docs/sync.md, "Checkpoints")::

    {"walks": {"all": {"cursor": 69891, "complete": true, "phase": "done", "ladder": [...]}},
     "newest_date_sent": "2026-11-26T08:00:00+00:00", "answer_period_refused": true}

The classes below are typed views over those dicts: they read and write the dicts themselves,
so what a lake stores, `cgsync status` and the runner read is the same layout.

A checkpoint is one run of the pipeline. Per resource, a `Checkpoint` spends its budget and
holds the CGIDs it has taken; `Checkpoint.accept` is where a page enters it and where the
page's cursor is committed to the walk state. A page not accepted never moves a cursor.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from time import monotonic
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cgsync._arrow import ArrowPage
from cgsync._client import Cursor, Page
from cgsync._endpoints import RecordKind
from cgsync._pages import ends_walk
from cgsync.settings import PRIMARY_KEY

FAILED = "failed"
"""Resource state: the API failure that ended this checkpoint of the resource (then cleared)."""
ANSWER_PERIOD_REFUSED = "answer_period_refused"
"""Resource state: the API refused `period[field]=date_survey_response` once."""
REFRESH_FIELDS: dict[RecordKind, str] = {
    "non_response": "date_sent",
    "response": "date_survey_response",
}
"""The field each kind's refresh window is read by; its newest value seen anchors the window."""
CGID_SPAN = 1 << 27
"""CGIDs a `CgidSet` holds from its first (16 MB of bits, touched only where used)."""
_SPAN_BELOW = CGID_SPAN // 4

Rung = list[Any]
"""A ladder rung: `[cursor that fetched a page, newest date_creation on it (ISO) or None]`."""


class Phase(StrEnum):
    """Where a walk's cycle is (`phase` in its state)."""

    WALK = "walk"
    """Walking from the stored cursor (v6: about to start from its ladder's rung)."""
    WALKING = "walking"
    """v6: walking from the ladder's start rung."""
    BACKFILL = "backfill"
    """v7: an initial load's windows walked side by side (`backfill` holds them)."""
    REFRESH = "refresh"
    """Re-reading the refresh window (`refresh` holds it and its own cursor)."""
    DONE = "done"


class Position(Protocol):
    """What a cursor is committed to: a walk, its refresh, a backfill window."""

    def advance(self, page: Page) -> None: ...


class _Period:
    """A walk over a period of days (`start`, `end`: ISO dates) with its own cursor."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    @property
    def start(self) -> str:
        return str(self.raw["start"])

    @property
    def end(self) -> str:
        return str(self.raw["end"])

    @property
    def cursor(self) -> Cursor | None:
        return self.raw.get("cursor")

    def advance(self, page: Page) -> None:
        self.raw["cursor"] = page.resume_cursor


class RefreshState(_Period):
    """`walk["refresh"]`: the window re-read by period, or (`from_ladder`, no period) the
    responses re-read from a ladder rung."""

    @property
    def from_ladder(self) -> bool:
        return bool(self.raw.get("from_ladder"))


class Window(_Period):
    """One window of a parallel backfill: its `date_creation` days, cursor and end."""

    @property
    def done(self) -> bool:
        return bool(self.raw["done"])

    def advance(self, page: Page) -> None:
        super().advance(page)
        self.raw["done"] = ends_walk(page)


class BackfillPlan:
    """`walk["backfill"]`: the head H the walk goes on from, and the windows."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    @staticmethod
    def new(head: Cursor | None, windows: list[tuple[str, str]]) -> dict[str, Any]:
        return {
            "head": head,
            "windows": [
                {"start": start, "end": end, "cursor": None, "done": False}
                for start, end in windows
            ],
        }

    @property
    def head(self) -> Cursor | None:
        return self.raw["head"]

    @property
    def windows(self) -> list[Window]:
        return [Window(window) for window in self.raw["windows"]]


class WalkState:
    """One walk of a resource (one filter combination): `walks[<filters key>]`.

    A cycle is one sync of the walk: it may take several checkpoints; `complete` tells the
    runner when it has ended.
    """

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    @property
    def cursor(self) -> Cursor | None:
        return self.raw["cursor"]

    @cursor.setter
    def cursor(self, cursor: Cursor | None) -> None:
        self.raw["cursor"] = cursor

    @property
    def complete(self) -> bool:
        return bool(self.raw.get("complete", True))

    @property
    def phase(self) -> Phase:
        return Phase(self.raw["phase"])

    @phase.setter
    def phase(self, phase: Phase) -> None:
        self.raw["phase"] = phase.value

    @property
    def from_scratch(self) -> bool:
        """Whether this cycle began without a cursor (an initial load)."""
        return bool(self.raw.get("from_scratch", False))

    def keep_ladder(self) -> list[Rung]:
        """The cursors this walk was given, a rung per page (stored from the first call on)."""
        ladder: list[Rung] = self.raw.setdefault("ladder", [])
        return ladder

    @property
    def refresh(self) -> RefreshState:
        return RefreshState(self.raw["refresh"])

    @property
    def backfill(self) -> BackfillPlan:
        return BackfillPlan(self.raw["backfill"])

    def advance(self, page: Page) -> None:
        self.raw["cursor"] = page.resume_cursor

    def begin_cycle(self) -> None:
        """Start a new cycle if the last one ended."""
        if self.complete:
            self.raw.update(
                complete=False, phase=Phase.WALK.value, from_scratch=self.cursor is None
            )

    def start_refresh(self, plan: dict[str, Any]) -> None:
        self.raw.update(phase=Phase.REFRESH.value, refresh=plan)

    def end_refresh(self) -> None:
        del self.raw["refresh"]
        self.phase = Phase.DONE

    def start_backfill(self, plan: dict[str, Any]) -> None:
        self.raw.update(backfill=plan, phase=Phase.BACKFILL.value)

    def hand_over(self) -> None:
        """After the last window: walk on from the head H. Like a sequential initial load, the
        walk from H skips the refresh window; without a head (the listing was empty) it walks
        from the start, and must not backfill again."""
        head = self.backfill.head
        del self.raw["backfill"]
        self.raw.update(cursor=head, phase=Phase.WALK.value, from_scratch=head is not None)

    def end_cycle(self) -> None:
        self.raw.pop("from_scratch", None)
        self.raw.update(phase=Phase.DONE.value, complete=True)


class ResourceState:
    """One resource's state: its walks, the newest refresh-field value seen, the flags."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def begin(self, filters_key: str, *, full_refresh: bool = False) -> WalkState:
        """The walk of `filters_key`, starting a new cycle if its last one ended
        (`full_refresh`: forgetting all this resource's state first)."""
        if full_refresh:
            self.raw.clear()
        self.raw.pop(FAILED, None)
        walk = WalkState(self.raw.setdefault("walks", {}).setdefault(filters_key, {"cursor": None}))
        walk.begin_cycle()
        return walk

    @property
    def failed(self) -> str | None:
        return self.raw.get(FAILED)

    @failed.setter
    def failed(self, failure: str) -> None:
        self.raw[FAILED] = failure

    @property
    def answer_period_refused(self) -> bool:
        return bool(self.raw.get(ANSWER_PERIOD_REFUSED))

    def refuse_answer_period(self) -> None:
        self.raw[ANSWER_PERIOD_REFUSED] = True

    def newest(self, kind: RecordKind) -> datetime | None:
        """The newest value of the kind's refresh field seen: it anchors the window."""
        stored = self.raw.get(_newest_key(kind))
        return None if stored is None else datetime.fromisoformat(stored)

    def note_newest(self, kind: RecordKind, table: pa.Table) -> None:
        """Remember the newest value of the refresh field on `table`, if newer."""
        field = REFRESH_FIELDS[kind]
        if field not in table.column_names or not table.num_rows:
            return
        newest = pc.max(table[field]).as_py()
        stored = self.newest(kind)
        if newest is not None and (stored is None or newest > stored):
            self.raw[_newest_key(kind)] = newest.isoformat()


def _newest_key(kind: RecordKind) -> str:
    return f"newest_{REFRESH_FIELDS[kind]}"


def walk_state(source_state: Mapping[str, Any], resource: str, filters_key: str) -> dict[str, Any]:
    """The stored state of one walk of `resource` in a pipeline's source state (or {})."""
    resources = source_state.get("resources", {})
    walk: dict[str, Any] = resources.get(resource, {}).get("walks", {}).get(filters_key, {})
    return walk


class Budget:
    """What one walk of a checkpoint may still fetch: a number of pages, and a time.

    Whether it is exhausted is decided as each page is counted, so that every reader of
    `exhausted` agrees on the page that ended the checkpoint.
    """

    def __init__(self, pages: int | None, seconds: float | None = None) -> None:
        if pages is not None and pages < 1:
            raise ValueError(f"a checkpoint's pages must be 1 or more, got {pages}")
        if seconds is not None and seconds <= 0:
            raise ValueError(f"a checkpoint's seconds must be more than 0, got {seconds}")
        self.left = pages
        self._deadline = None if seconds is None else monotonic() + seconds
        self.exhausted = False

    def spend(self) -> None:
        """Count one page fetched."""
        if self.left is not None:
            self.left -= 1
        self.exhausted = (self.left is not None and self.left <= 0) or (
            self._deadline is not None and monotonic() >= self._deadline
        )


class CgidSet:
    """CGIDs as bits, from a quarter span below the first one seen (they are the system's
    sequence numbers, but a listing need not come in CGID order)."""

    def __init__(self) -> None:
        self._base: int | None = None
        self._bits: np.ndarray | None = None

    def add_if_new(self, cgids: pa.Array | pa.ChunkedArray) -> bool:
        """Add `cgids` and return True, or return False (nothing added) if one of them is in
        the set already or outside its span."""
        keys = np.asarray(cgids.to_numpy(), dtype=np.int64)
        if not len(keys):
            return True
        if self._base is None:
            self._base = int(keys.min()) - _SPAN_BELOW
            self._bits = np.zeros(CGID_SPAN // 8, dtype=np.uint8)
        assert self._bits is not None
        offsets = keys - self._base
        if offsets.min() < 0 or offsets.max() >= CGID_SPAN:
            return False
        cells, masks = offsets >> 3, (1 << (offsets & 7)).astype(np.uint8)
        if np.any(self._bits[cells] & masks):
            return False
        np.bitwise_or.at(self._bits, cells, masks)
        return True


class Checkpoint:
    """What one run of the pipeline takes of one resource: pages within its budget, each
    CGID once (one load package).

    A walk may meet a record twice: the listings are ordered by primary key, but nothing stops
    an API from listing a record again (the refresh window and a backfill's hand-over leave out
    what their own checkpoint read, `cgsync._batches.without`). A checkpoint ends before a page
    that brings a CGID it already holds, and the next checkpoint reads that page again, so its
    merge replaces the older version, child rows included. dlt's own deduplication of staging
    would keep an arbitrary version and could mix two versions' child rows.
    """

    def __init__(self, pages: int | None, seconds: float | None = None) -> None:
        self._pages = pages
        self._seconds = seconds
        self.budget = Budget(pages, seconds)
        self._held = CgidSet()
        self._taken = 0
        self._closed = False

    @property
    def over(self) -> bool:
        """No page may follow: the budget is spent, or the checkpoint has ended."""
        return self.budget.exhausted or self._closed

    def renew_budget(self) -> None:
        """A budget of its own, from now, for the walk a backfill hands over to."""
        self.budget = Budget(self._pages, self._seconds)

    def accept(self, page: Page, arrow: ArrowPage, position: Position) -> bool:
        """Take `page` (as `arrow`) into the checkpoint and commit its cursor to `position`;
        or refuse it (False) if it brings a CGID the checkpoint holds: the checkpoint ends
        before it, the cursor where it was.

        The first page is always taken, so that every checkpoint moves the walk on; one whose
        CGIDs are too far apart to hold is a checkpoint alone.
        """
        if self._closed:
            return False
        added = self._held.add_if_new(arrow.table.column(PRIMARY_KEY))
        if not added and self._taken:
            self._closed = True
            return False
        self._closed = not added
        self._taken += 1
        position.advance(page)
        return True
