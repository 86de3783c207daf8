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

logger = logging.getLogger("cgsync")

UNFILTERED = "all"
"""The walk key of an unfiltered walk (each filter combination has its own cursors)."""

PageCallback = Callable[[str, int], None]
"""Called after each page with the resource name and the page's number of records."""

_PERIOD_DAY = "%Y-%m-%d"
_REFRESH_FIELD = "date_sent"


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
    ) -> Iterator[tuple[Page, ArrowPage]]:
        """Each page from `cursor` to the end of the walk or of the budget, as Arrow too."""
        for page in walk_pages(
            client,
            endpoint,
            cursor=cursor,
            per_page=self.per_page[endpoint.resource],
            params=params,
            budget=budget,
        ):
            arrow = self.to_arrow(endpoint, page)
            self.count(endpoint, page)
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
            logger.warning(
                "%s: CGID %s: %s %r could not be read; stored NULL, its text in %s",
                endpoint.resource,
                cgid,
                column,
                raw if raw is None or len(raw) <= 80 else raw[:77] + "...",
                REJECTED_VALUES_TABLE,
            )
        return arrow

    def count(self, endpoint: Endpoint, page: Page) -> None:
        """Report `page` to the progress callback, if any."""
        if self.on_page is not None:
            self.on_page(endpoint.resource, len(page))

    def begin(self, resource: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The resource state and this walk's state, starting a new cycle if the last ended.

        A cycle is one sync of the walk: it may take several runs (checkpoints) of the
        pipeline; `complete` tells the runner when it has ended.
        """
        state = dlt.current.resource_state(resource)
        if self.full_refresh:
            state.clear()
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
                for page, arrow in walker.pages(client, budget, endpoint, walk["cursor"], params):
                    if refresh_follows:
                        seen.append(arrow.table[PRIMARY_KEY].combine_chunks())
                    if walker.filters.key == UNFILTERED:
                        note_newest_sent(state, arrow.table)
                    yield arrow
                    walk["cursor"] = page.resume_cursor
                    if not ends_walk(page) and budget.exhausted:
                        return
                walk["phase"] = "done"
                if refresh_follows and "newest_date_sent" in state:
                    walk.update(phase="refresh", refresh=_refresh_period(state, walker))
            if walk["phase"] == "refresh" and not budget.exhausted:
                yield from _refresh(endpoint, walker, client, walk, budget, seen)
        if walk["phase"] == "done":
            walk.pop("from_scratch", None)
            walk["complete"] = True

    return walk


def _refresh(
    endpoint: Endpoint,
    walker: Walker,
    client: ApiClient,
    walk: dict[str, Any],
    budget: Budget,
    seen: list[pa.Array],
) -> Iterator[ArrowPage]:
    """Re-read the non-responses sent within the refresh window and merge their statuses."""
    refresh = walk["refresh"]
    filters = replace(
        walker.filters,
        period_field=_REFRESH_FIELD,
        since=date.fromisoformat(refresh["start"]),
        until=date.fromisoformat(refresh["end"]),
    )
    # A CGID the walk read into this same load package must not come twice: a Delta merge
    # refuses duplicate keys, and the walk's copy is just as fresh.
    already = pa.concat_arrays(seen) if seen else None
    params = walker.params(endpoint, filters)
    for page, arrow in walker.pages(client, budget, endpoint, refresh.get("cursor"), params):
        yield without(arrow, already)
        refresh["cursor"] = page.resume_cursor
        if not ends_walk(page) and budget.exhausted:
            return
    del walk["refresh"]
    walk["phase"] = "done"


def without(arrow: ArrowPage, cgids: pa.Array | None) -> ArrowPage:
    """The page without the rows of `cgids` (in the main and the child tables)."""
    if cgids is None:
        return arrow

    def keep(table: pa.Table) -> pa.Table:
        return table.filter(pc.invert(pc.is_in(table[PRIMARY_KEY], value_set=cgids)))

    return ArrowPage(
        table=keep(arrow.table),
        children={name: keep(table) for name, table in arrow.children.items()},
    )


def note_newest_sent(state: dict[str, Any], table: pa.Table) -> None:
    """Remember the newest `date_sent` in the lake: it anchors the refresh window."""
    if _REFRESH_FIELD not in table.column_names or not table.num_rows:
        return
    newest = pc.max(table[_REFRESH_FIELD]).as_py()
    stored = state.get("newest_date_sent")
    if newest is not None and (stored is None or newest > datetime.fromisoformat(stored)):
        state["newest_date_sent"] = newest.isoformat()


def _refresh_wanted(endpoint: Endpoint, walker: Walker, walk: dict[str, Any]) -> bool:
    return (
        endpoint.record_kind == "non_response"
        and walker.refresh_window > timedelta(0)
        and walker.filters.period_field is None
        # A walk from the very start reads every non-response anyway.
        and not walk.get("from_scratch", False)
    )


def _refresh_period(state: dict[str, Any], walker: Walker) -> dict[str, str]:
    """The refresh window in the system's own days, anchored on the newest `date_sent` seen."""
    newest = datetime.fromisoformat(state["newest_date_sent"]).astimezone(walker.source_timezone)
    return {
        "start": (newest - walker.refresh_window).strftime(_PERIOD_DAY),
        "end": (newest + timedelta(days=1)).strftime(_PERIOD_DAY),
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
