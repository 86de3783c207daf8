"""The walks behind the resources: cursors in checkpoints, the refresh window, the v6 ladder.

Each walk keeps its state in the dlt resource state (see docs/sync.md): a cycle is one sync of
a walk and may take several checkpoints; `complete` tells the runner when it has ended.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from cgsync._arrow import ArrowPage, records_to_arrow
from cgsync._client import ApiClient, Page
from cgsync._endpoints import Endpoint
from cgsync._exceptions import ParametersRefusedError
from cgsync._logs import log_event
from cgsync._pages import Budget, ends_walk, walk_pages
from cgsync.settings import (
    CGID_FILTER_PARAM,
    EXPANSION_PARAM,
    OUTBOUND_FILTER_PARAM,
    PERIOD_END_PARAM,
    PERIOD_FIELD_PARAM,
    PERIOD_START_PARAM,
    PRIMARY_KEY,
    REJECTED_VALUES_TABLE,
)

UNFILTERED = "all"
"""The walk key of an unfiltered walk (each filter combination has its own cursors)."""

PageCallback = Callable[[str, int], None]
"""Called after each page with the resource name and the page's number of records."""

_PERIOD_DAY = "%Y-%m-%d"
# The field each kind's refresh window is read by; its newest value seen anchors the window.
REFRESH_FIELDS = {"non_response": "date_sent", "response": "date_survey_response"}
_OPEN_END = date(2999, 12, 31)
FAILED = "failed"
"""Resource state: the API failure that ended this checkpoint of the resource (then cleared)."""
ANSWER_PERIOD_REFUSED = "answer_period_refused"
"""Resource state: the API refused `period[field]=date_survey_response` once."""


@dataclass(frozen=True)
class Filters:
    """What narrows a walk: a period on one date field, one CGID, one outbound filter."""

    period_field: str | None = None
    since: date | None = None
    until: date | None = None
    cgid: int | None = None
    outbound_filter: str | None = None

    @property
    def key(self) -> str:
        """Names the walk in the resource state: each filter combination has its own cursor."""
        parts = []
        if self.period_field:
            parts.append(f"{self.period_field}:{self.since}..{self.until}")
        if self.cgid is not None:
            parts.append(f"cgid:{self.cgid}")
        if self.outbound_filter:
            parts.append(f"outbound:{self.outbound_filter}")
        return ",".join(parts) or UNFILTERED

    def params(self) -> dict[str, str]:
        params = {}
        if self.period_field:
            params.update(_period_params(self.period_field, self.since, self.until))
        if self.cgid is not None:
            params[CGID_FILTER_PARAM] = str(self.cgid)
        if self.outbound_filter:
            params[OUTBOUND_FILTER_PARAM] = self.outbound_filter
        return params


@dataclass(frozen=True)
class Walker:
    """Everything the resources of one source share."""

    open_client: Callable[[], contextlib.AbstractContextManager[ApiClient]]
    per_page: dict[str, int]
    expansions: dict[str, tuple[str, ...]]
    filters: Filters
    source_timezone: ZoneInfo
    refresh_window: timedelta
    v6_lookback: timedelta
    checkpoint_pages: int | None
    full_refresh: bool
    on_page: PageCallback | None
    parallel: int = 1
    """Windows walked side by side in a v7 initial load (see cgsync._backfill)."""
    checkpoint_seconds: float | None = None
    """A checkpoint also ends after the page that takes it past this many seconds."""
    on_refresh_page: PageCallback | None = None
    """Like `on_page`, for the pages of a refresh window (records read again)."""

    def params(self, endpoint: Endpoint, filters: Filters | None = None) -> dict[str, Any]:
        params: dict[str, Any] = (filters or self.filters).params()
        if self.expansions[endpoint.resource]:
            params[EXPANSION_PARAM] = list(self.expansions[endpoint.resource])
        return params

    def budget(self) -> Budget:
        """A new checkpoint's budget, its time running from now."""
        return Budget(self.checkpoint_pages, self.checkpoint_seconds)

    def pages(
        self,
        client: ApiClient,
        budget: Budget,
        endpoint: Endpoint,
        cursor: Any,
        params: dict[str, Any],
        *,
        refresh: bool = False,
    ) -> Iterator[tuple[Page, ArrowPage]]:
        """Each page from `cursor` to the end of the walk or of the budget, as Arrow too
        (`refresh`: pages of a refresh window, counted apart)."""
        for page in walk_pages(
            client,
            endpoint,
            cursor=cursor,
            per_page=self.per_page[endpoint.resource],
            params=params,
            budget=budget,
        ):
            arrow = self.to_arrow(endpoint, page)
            self.count(endpoint, page, refresh=refresh)
            yield page, arrow

    def to_arrow(self, endpoint: Endpoint, page: Page) -> ArrowPage:
        """`page` as Arrow, its dates read in the system's time zone, synced now; a value that
        cannot be read is NULL, kept as text in the lake and named in a warning."""
        arrow = records_to_arrow(
            page.data,
            endpoint.record_kind,
            source_timezone=self.source_timezone.key,
            synced_at=datetime.now(UTC),
        )
        for cgid, column, raw in zip(*arrow.rejected.to_pydict().values(), strict=True):
            shown = raw if raw is None or len(raw) <= 80 else raw[:77] + "..."
            log_event(
                "value_rejected",
                "%s: CGID %s: %s %r could not be read; stored NULL, its text in %s",
                endpoint.resource,
                cgid,
                column,
                shown,
                REJECTED_VALUES_TABLE,
                level=logging.WARNING,
                resource=endpoint.resource,
                cgid=cgid,
                column=column,
                text=shown,
            )
        return arrow

    def count(self, endpoint: Endpoint, page: Page, *, refresh: bool = False) -> None:
        """Report `page` to its callback, if any."""
        callback = self.on_refresh_page if refresh else self.on_page
        if callback is not None:
            callback(endpoint.resource, len(page))

    def begin(self, resource: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The resource state and this walk's state, starting a new cycle if the last ended.

        A cycle is one sync of the walk: it may take several runs (checkpoints) of the
        pipeline; `complete` tells the runner when it has ended.
        """
        state = dlt.current.resource_state(resource)
        if self.full_refresh:
            state.clear()
        state.pop(FAILED, None)
        walk = state.setdefault("walks", {}).setdefault(self.filters.key, {"cursor": None})
        if walk.get("complete", True):
            walk.update(complete=False, phase="walk", from_scratch=walk["cursor"] is None)
        return state, walk


def v7_walk(endpoint: Endpoint, walker: Walker) -> Callable[[], Iterator[ArrowPage]]:
    """A v7 sync walk from the stored cursor; non-responses then re-read the refresh window."""

    def walk() -> Iterator[ArrowPage]:
        state, walk = walker.begin(endpoint.resource)
        refresh_follows = _refresh_wanted(endpoint, walker, walk)
        seen: list[pa.Array] = []
        budget = walker.budget()
        with walker.open_client() as client:
            if walk["phase"] == "walk":
                params = walker.params(endpoint)
                # Responses keep a ladder of the cursors they were given, as v6 does: should the
                # API refuse the refresh window's period, late answers are re-read from one.
                ladder = walk.setdefault("ladder", []) if _keeps_ladder(endpoint) else None
                for page, arrow in walker.pages(client, budget, endpoint, walk["cursor"], params):
                    if refresh_follows:
                        seen.append(arrow.table[PRIMARY_KEY].combine_chunks())
                    if walker.filters.key == UNFILTERED:
                        note_newest(endpoint, state, arrow.table)
                    if ladder is not None and len(page):
                        _climb(ladder, page, arrow.table)
                    yield arrow
                    walk["cursor"] = page.resume_cursor
                    if not ends_walk(page) and budget.exhausted:
                        return
                walk["phase"] = "done"
                if refresh_follows and _newest_key(endpoint) in state:
                    plan = _refresh_plan(endpoint, state, walker, walk)
                    walk.update(phase="refresh", refresh=plan)
            if walk["phase"] == "refresh" and not budget.exhausted:
                yield from _refresh(endpoint, walker, client, state, walk, budget, seen)
        if walk["phase"] == "done":
            walk.pop("from_scratch", None)
            walk["complete"] = True

    return walk


def _refresh(
    endpoint: Endpoint,
    walker: Walker,
    client: ApiClient,
    state: dict[str, Any],
    walk: dict[str, Any],
    budget: Budget,
    seen: list[pa.Array],
) -> Iterator[ArrowPage]:
    """Re-read the non-responses sent within the refresh window and merge their statuses; the
    responses answered within it, which a listing by record key may hold behind the cursor.

    An API that refuses `period[field]=date_survey_response` (400 or 422) is remembered in the
    state (`ANSWER_PERIOD_REFUSED`): responses are then re-read from the ladder instead.
    """
    refresh = walk["refresh"]
    if refresh.get("from_ladder"):
        params = walker.params(endpoint)
    else:
        filters = replace(
            walker.filters,
            period_field=REFRESH_FIELDS[endpoint.record_kind],
            since=date.fromisoformat(refresh["start"]),
            until=date.fromisoformat(refresh["end"]),
        )
        params = walker.params(endpoint, filters)
    # A CGID the walk read into this same load package must not come twice: a Delta merge
    # refuses duplicate keys, and the walk's copy is just as fresh.
    already = pa.concat_arrays(seen) if seen else None
    cursor = refresh.get("cursor")
    try:
        for page, arrow in walker.pages(client, budget, endpoint, cursor, params, refresh=True):
            yield without(arrow, already)
            refresh["cursor"] = page.resume_cursor
            if not ends_walk(page) and budget.exhausted:
                return
    except ParametersRefusedError as refused:
        if not _keeps_ladder(endpoint) or refresh.get("from_ladder"):
            raise
        log_event(
            "fallback",
            "%s: %s; late answers are re-read from a cursor kept %s back instead",
            endpoint.resource,
            refused,
            walker.v6_lookback,
            level=logging.WARNING,
            resource=endpoint.resource,
            reason=str(refused),
        )
        state[ANSWER_PERIOD_REFUSED] = True
        walk["refresh"] = _ladder_refresh(walker, walk)
        yield from _refresh(endpoint, walker, client, state, walk, budget, seen)
        return
    del walk["refresh"]
    walk["phase"] = "done"


def _keeps_ladder(endpoint: Endpoint) -> bool:
    return endpoint.version == 7 and endpoint.record_kind == "response"


def _refresh_plan(
    endpoint: Endpoint, state: dict[str, Any], walker: Walker, walk: dict[str, Any]
) -> dict[str, Any]:
    """What the refresh re-reads: the window by period, or the ladder's re-walk."""
    if _keeps_ladder(endpoint) and state.get(ANSWER_PERIOD_REFUSED):
        return _ladder_refresh(walker, walk)
    if _keeps_ladder(endpoint):
        _ladder_refresh(walker, walk)  # only to drop the rungs no fallback would need
    return _refresh_period(endpoint, state, walker)


def _ladder_refresh(walker: Walker, walk: dict[str, Any]) -> dict[str, Any]:
    """Re-walk the responses from the last rung wholly older than the lookback (from the
    start without one): how late an answer can come is the lookback, not the window."""
    ladder: list[list[Any]] = walk.setdefault("ladder", [])
    start = _rung_before(ladder, walker.v6_lookback)
    ladder[:] = ladder[max(start, 0) :]
    return {"from_ladder": True, "cursor": ladder[0][0] if start >= 0 else None}


def without(arrow: ArrowPage, cgids: pa.Array | None) -> ArrowPage:
    """The page without the rows of `cgids` (in the main and the child tables)."""
    if cgids is None:
        return arrow

    def keep(table: pa.Table) -> pa.Table:
        return table.filter(pc.invert(pc.is_in(table[PRIMARY_KEY], value_set=cgids)))

    return ArrowPage(
        table=keep(arrow.table),
        children={name: keep(table) for name, table in arrow.children.items()},
        rejected=keep(arrow.rejected),
    )


def note_newest(endpoint: Endpoint, state: dict[str, Any], table: pa.Table) -> None:
    """Remember the newest value of the refresh field in the lake: it anchors the window."""
    field = REFRESH_FIELDS[endpoint.record_kind]
    if field not in table.column_names or not table.num_rows:
        return
    newest = pc.max(table[field]).as_py()
    stored = state.get(_newest_key(endpoint))
    if newest is not None and (stored is None or newest > datetime.fromisoformat(stored)):
        state[_newest_key(endpoint)] = newest.isoformat()


def _newest_key(endpoint: Endpoint) -> str:
    return f"newest_{REFRESH_FIELDS[endpoint.record_kind]}"


def _refresh_wanted(endpoint: Endpoint, walker: Walker, walk: dict[str, Any]) -> bool:
    return (
        endpoint.version == 7
        and walker.refresh_window > timedelta(0)
        and walker.filters.period_field is None
        # A walk from the very start reads every non-response anyway; an answer to an old
        # invitation may land behind even that walk's cursor while it runs.
        and (endpoint.record_kind == "response" or not walk.get("from_scratch", False))
    )


def _refresh_period(endpoint: Endpoint, state: dict[str, Any], walker: Walker) -> dict[str, str]:
    """The refresh window in the system's own days, from the newest refresh-field value seen
    less the window; for responses to no end, since a late answer may be newer than any the
    walk saw."""
    newest = datetime.fromisoformat(state[_newest_key(endpoint)])
    newest = newest.astimezone(walker.source_timezone)
    end = newest.date() + timedelta(days=1) if endpoint.record_kind == "non_response" else _OPEN_END
    return {
        "start": (newest - walker.refresh_window).strftime(_PERIOD_DAY),
        "end": end.strftime(_PERIOD_DAY),
    }


def v6_walk(endpoint: Endpoint, walker: Walker) -> Callable[[], Iterator[ArrowPage]]:
    """A v6 walk (ordered by CGID) from the ladder rung just older than the lookback."""

    def walk() -> Iterator[ArrowPage]:
        _, walk = walker.begin(endpoint.resource)
        ladder: list[list[Any]] = walk.setdefault("ladder", [])
        if walk["phase"] == "walk":
            start = _rung_before(ladder, walker.v6_lookback)
            # Older rungs are never needed again; newer ones are rebuilt by this walk.
            ladder[:] = ladder[start : start + 1] if start >= 0 else []
            walk.update(cursor=ladder[0][0] if ladder else None, phase="walking")
        budget = walker.budget()
        with walker.open_client() as client:
            params = walker.params(endpoint)
            for page, arrow in walker.pages(client, budget, endpoint, walk["cursor"], params):
                if len(page):
                    _climb(ladder, page, arrow.table)
                yield arrow
                # On the last page (null `next`) this keeps the cursor that fetched it.
                walk["cursor"] = page.resume_cursor
                if not ends_walk(page) and budget.exhausted:
                    return
        walk.update(phase="done", complete=True)
        walk.pop("from_scratch", None)

    return walk


def _climb(ladder: list[list[Any]], page: Page, table: pa.Table) -> None:
    """Add a rung: the cursor that fetched `page` and the newest `date_creation` on it."""
    newest = pc.max(table["date_creation"]).as_py()
    rung = [page.cursor, newest.isoformat() if newest else None]
    if ladder and ladder[-1][0] == page.cursor:
        ladder[-1] = rung  # the start rung, read again
    else:
        ladder.append(rung)


def _rung_before(ladder: list[list[Any]], lookback: timedelta) -> int:
    """Index of the last rung whose page is wholly older than newest - lookback; -1: none."""
    dates = [datetime.fromisoformat(newest) if newest else None for _, newest in ladder]
    known = [d for d in dates if d is not None]
    if not known:
        return -1
    threshold = max(known) - lookback
    older = [index for index, d in enumerate(dates) if d is not None and d < threshold]
    return older[-1] if older else -1


def _period_params(field: str, since: date | None, until: date | None) -> dict[str, str]:
    # The API wants all three together.
    return {
        PERIOD_FIELD_PARAM: field,
        PERIOD_START_PARAM: f"{since:{_PERIOD_DAY}}",
        PERIOD_END_PARAM: f"{until:{_PERIOD_DAY}}",
    }
