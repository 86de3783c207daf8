"""The walks behind the resources, one strategy per kind of endpoint: the v7 sync cursor with
its refresh window (and parallel backfill), the v6 ladder.

Each walk keeps its state in the dlt resource state (cgsync._checkpoints): a cycle is one sync
of a walk and may take several checkpoints; `complete` tells the runner when it has ended.
Every page a walk yields has been accepted into its checkpoint, which committed its cursor.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from cgsync._arrow import ArrowPage, records_to_arrow
from cgsync._backfill import backfill_wanted, parallel_backfill
from cgsync._batches import without
from cgsync._checkpoints import (
    REFRESH_FIELDS,
    Checkpoint,
    Phase,
    ResourceState,
    Rung,
    WalkState,
)
from cgsync._client import ApiClient, Page
from cgsync._endpoints import Endpoint
from cgsync._exceptions import ParametersRefusedError
from cgsync._logs import log_event
from cgsync._pages import ReadAhead, ends_walk, walk_pages
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

if TYPE_CHECKING:
    from cgsync._config import SyncOptions

UNFILTERED = "all"
"""The walk key of an unfiltered walk (each filter combination has its own cursors)."""

PageCallback = Callable[[str, int], None]
"""Called after each page with the resource name and the page's number of records."""

_PERIOD_DAY = "%Y-%m-%d"
_OPEN_END = date(2999, 12, 31)


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
    """Everything the resources of one source share: the sync's options, what is derived from
    them once (checked by cgsync._config), and the source's runtime collaborators."""

    options: SyncOptions
    open_client: Callable[[], contextlib.AbstractContextManager[ApiClient]]
    per_page: dict[str, int]
    """Each endpoint's page size."""
    expansions: dict[str, tuple[str, ...]]
    """Each endpoint's `with[]` values."""
    filters: Filters
    """The options' filters, a period without a field on `date_creation`."""
    source_timezone: ZoneInfo
    read_ahead: ReadAhead | None = None
    """Where a walk that a checkpoint stopped goes on reading, for the next checkpoint."""
    on_page: PageCallback | None = None
    on_refresh_page: PageCallback | None = None
    """Like `on_page`, for the pages of a refresh window (records read again)."""

    def params(self, endpoint: Endpoint, filters: Filters | None = None) -> dict[str, Any]:
        params: dict[str, Any] = (filters or self.filters).params()
        if self.expansions[endpoint.resource]:
            params[EXPANSION_PARAM] = list(self.expansions[endpoint.resource])
        return params

    def checkpoint(self) -> Checkpoint:
        """A new checkpoint of one resource, its time running from now."""
        return Checkpoint(self.options.checkpoint_pages, self.options.checkpoint_seconds)

    def pages(
        self,
        client: ApiClient,
        checkpoint: Checkpoint,
        endpoint: Endpoint,
        cursor: Any,
        params: dict[str, Any],
        *,
        refresh: bool = False,
    ) -> Iterator[tuple[Page, ArrowPage]]:
        """Each page from `cursor` to the end of the walk or of the checkpoint's budget, as
        Arrow too (`refresh`: pages of a refresh window, counted apart)."""
        for page in walk_pages(
            client,
            endpoint,
            cursor=cursor,
            per_page=self.per_page[endpoint.resource],
            params=params,
            budget=checkpoint.budget,
            read_ahead=self.read_ahead,
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

    def begin(self, resource: str) -> tuple[ResourceState, WalkState]:
        """The resource state and this walk's state, starting a new cycle if the last ended."""
        state = ResourceState(dlt.current.resource_state(resource))
        return state, state.begin(self.filters.key, full_refresh=self.options.full_refresh)


class WalkStrategy(Protocol):
    """How one kind of endpoint is walked in a checkpoint: the pages it accepts, as Arrow."""

    takes_filters: bool
    """Whether the walk can be narrowed by `Filters` (each combination keeps its cursors)."""

    def walk(
        self, endpoint: Endpoint, walker: Walker, checkpoint: Checkpoint
    ) -> Iterator[ArrowPage]: ...


class SyncWalk:
    """v7: the sync cursor's walk, then the refresh window; an initial load may be walked in
    parallel windows first (cgsync._backfill).

    Responses keep a ladder of the cursors they were given, as v6 does: should the API refuse
    the refresh window's period, late answers are re-read from one.
    """

    takes_filters = True

    def walk(
        self, endpoint: Endpoint, walker: Walker, checkpoint: Checkpoint
    ) -> Iterator[ArrowPage]:
        state, walk = walker.begin(endpoint.resource)
        leave_out = None
        if backfill_wanted(walker, state, walk):
            leave_out = yield from parallel_backfill(endpoint, walker, state, walk, checkpoint)
            if walk.phase is Phase.BACKFILL:
                return  # the checkpoint ended before the windows did
            checkpoint.renew_budget()
        with walker.open_client() as client:
            cycle = _SyncCycle(endpoint, walker, client, state, walk, checkpoint, leave_out)
            yield from cycle.pages()


@dataclass
class _SyncCycle:
    """One checkpoint of a v7 walk's cycle: the walk from the stored cursor, then the refresh
    window. After a backfill's hand-over, in the same load package, without the records a
    window put in it (`leave_out`): a Delta merge refuses a key twice, and the window's copy
    is just as fresh."""

    endpoint: Endpoint
    walker: Walker
    client: ApiClient
    state: ResourceState
    walk: WalkState
    checkpoint: Checkpoint
    leave_out: pa.Array | None
    seen: list[pa.Array] = field(default_factory=list)
    """The CGIDs the walk read in this checkpoint, when a refresh follows."""

    def pages(self) -> Iterator[ArrowPage]:
        endpoint, walker, walk, checkpoint = self.endpoint, self.walker, self.walk, self.checkpoint
        refresh_follows = self._refresh_wanted()
        if walk.phase is Phase.WALK:
            params = walker.params(endpoint)
            ladder = walk.keep_ladder() if _keeps_ladder(endpoint) else None
            pages = walker.pages(self.client, checkpoint, endpoint, walk.cursor, params)
            for page, read in pages:
                if not checkpoint.accept(page, arrow := without(read, self.leave_out), walk):
                    return
                if refresh_follows:
                    self.seen.append(read.table[PRIMARY_KEY].combine_chunks())
                if walker.filters.key == UNFILTERED:
                    self.state.note_newest(endpoint.record_kind, read.table)
                if ladder is not None and len(page):
                    _climb(ladder, page, read.table)
                yield arrow
                if not ends_walk(page) and checkpoint.over:
                    return
            walk.phase = Phase.DONE
            if refresh_follows and self.state.newest(endpoint.record_kind) is not None:
                walk.start_refresh(_refresh_plan(endpoint, self.state, walker, walk))
        if walk.phase is Phase.REFRESH and not checkpoint.over:
            yield from self._refresh()
        if walk.phase is Phase.DONE:
            walk.end_cycle()

    def _refresh(self) -> Iterator[ArrowPage]:
        """Re-read the non-responses sent within the refresh window and merge their statuses;
        the responses answered within it, which a listing by record key may hold behind the
        cursor.

        An API that refuses `period[field]=date_survey_response` (400 or 422) is remembered in
        the state (`answer_period_refused`): responses are then re-read from the ladder instead.
        """
        endpoint, walker, refresh = self.endpoint, self.walker, self.walk.refresh
        if refresh.from_ladder:
            params = walker.params(endpoint)
        else:
            filters = replace(
                walker.filters,
                period_field=REFRESH_FIELDS[endpoint.record_kind],
                since=date.fromisoformat(refresh.start),
                until=date.fromisoformat(refresh.end),
            )
            params = walker.params(endpoint, filters)
        # A CGID the walk read into this same load package must not come twice: a Delta merge
        # refuses duplicate keys, and the walk's copy is just as fresh.
        already = pa.concat_arrays(self.seen) if self.seen else None
        pages = walker.pages(
            self.client, self.checkpoint, endpoint, refresh.cursor, params, refresh=True
        )
        try:
            for page, read in pages:
                arrow = without(without(read, already), self.leave_out)
                if not self.checkpoint.accept(page, arrow, refresh):
                    return
                yield arrow
                if not ends_walk(page) and self.checkpoint.over:
                    return
        except ParametersRefusedError as refused:
            if not _keeps_ladder(endpoint) or refresh.from_ladder:
                raise
            log_event(
                "fallback",
                "%s: %s; late answers are re-read from a cursor kept %s back instead",
                endpoint.resource,
                refused,
                walker.options.v6_lookback,
                level=logging.WARNING,
                resource=endpoint.resource,
                reason=str(refused),
            )
            self.state.refuse_answer_period()
            self.walk.start_refresh(_ladder_refresh(walker, self.walk))
            yield from self._refresh()
            return
        self.walk.end_refresh()

    def _refresh_wanted(self) -> bool:
        return (
            self.walker.options.refresh_window > timedelta(0)
            and self.walker.filters.period_field is None
            # A walk from the very start reads every non-response anyway; an answer to an old
            # invitation may land behind even that walk's cursor while it runs.
            and (self.endpoint.record_kind == "response" or not self.walk.from_scratch)
        )


class LadderWalk:
    """v6 (ordered by CGID): a walk from the ladder rung just older than the lookback."""

    takes_filters = False

    def walk(
        self, endpoint: Endpoint, walker: Walker, checkpoint: Checkpoint
    ) -> Iterator[ArrowPage]:
        _, walk = walker.begin(endpoint.resource)
        ladder = walk.keep_ladder()
        if walk.phase is Phase.WALK:
            start = _rung_before(ladder, walker.options.v6_lookback)
            # Older rungs are never needed again; newer ones are rebuilt by this walk.
            ladder[:] = ladder[start : start + 1] if start >= 0 else []
            walk.cursor = ladder[0][0] if ladder else None
            walk.phase = Phase.WALKING
        with walker.open_client() as client:
            params = walker.params(endpoint)
            for page, arrow in walker.pages(client, checkpoint, endpoint, walk.cursor, params):
                # On the last page (null `next`) this keeps the cursor that fetched it.
                if not checkpoint.accept(page, arrow, walk):
                    return
                if len(page):
                    _climb(ladder, page, arrow.table)
                yield arrow
                if not ends_walk(page) and checkpoint.over:
                    return
        walk.end_cycle()


WALKS: dict[int, WalkStrategy] = {7: SyncWalk(), 6: LadderWalk()}
"""The walk of each API version's sync endpoints."""


def walk_strategy(endpoint: Endpoint) -> WalkStrategy:
    return WALKS[endpoint.version]


def _keeps_ladder(endpoint: Endpoint) -> bool:
    return endpoint.record_kind == "response"


def _refresh_plan(
    endpoint: Endpoint, state: ResourceState, walker: Walker, walk: WalkState
) -> dict[str, Any]:
    """What the refresh re-reads: the window by period, or the ladder's re-walk."""
    if _keeps_ladder(endpoint) and state.answer_period_refused:
        return _ladder_refresh(walker, walk)
    if _keeps_ladder(endpoint):
        _ladder_refresh(walker, walk)  # only to drop the rungs no fallback would need
    return _refresh_period(endpoint, state, walker)


def _ladder_refresh(walker: Walker, walk: WalkState) -> dict[str, Any]:
    """Re-walk the responses from the last rung wholly older than the lookback (from the
    start without one): how late an answer can come is the lookback, not the window."""
    ladder = walk.keep_ladder()
    start = _rung_before(ladder, walker.options.v6_lookback)
    ladder[:] = ladder[max(start, 0) :]
    return {"from_ladder": True, "cursor": ladder[0][0] if start >= 0 else None}


def _refresh_period(endpoint: Endpoint, state: ResourceState, walker: Walker) -> dict[str, str]:
    """The refresh window in the system's own days, from the newest refresh-field value seen
    less the window; for responses to no end, since a late answer may be newer than any the
    walk saw."""
    newest = state.newest(endpoint.record_kind)
    assert newest is not None
    newest = newest.astimezone(walker.source_timezone)
    end = newest.date() + timedelta(days=1) if endpoint.record_kind == "non_response" else _OPEN_END
    return {
        "start": (newest - walker.options.refresh_window).strftime(_PERIOD_DAY),
        "end": end.strftime(_PERIOD_DAY),
    }


def _climb(ladder: list[Rung], page: Page, table: pa.Table) -> None:
    """Add a rung: the cursor that fetched `page` and the newest `date_creation` on it."""
    newest = pc.max(table["date_creation"]).as_py()
    rung = [page.cursor, newest.isoformat() if newest else None]
    if ladder and ladder[-1][0] == page.cursor:
        ladder[-1] = rung  # the start rung, read again
    else:
        ladder.append(rung)


def _rung_before(ladder: list[Rung], lookback: timedelta) -> int:
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
