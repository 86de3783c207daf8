"""The parallel initial backfill: K windows of `date_creation` walked at once, then handed over.

The hand-over rule (docs/sync.md, "Parallel backfill"): v7 cursors are the listing's own keys,
given in arrival order. Before any window starts, the head probe finds H, the highest key among
the newest records. Every record with a key <= H existed before the windows began and lies in
exactly one window (windows cover every day once), so a window reads it; every record with a
key > H arrives behind H, where the ordinary walk from H finds it. Once every window is
complete the walk's cursor becomes H and the cycle goes on as an ordinary periodic walk.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

import pyarrow as pa

from cgsync._arrow import ArrowPage
from cgsync._checkpoints import (
    BackfillPlan,
    Checkpoint,
    Phase,
    ResourceState,
    WalkState,
    Window,
)
from cgsync._client import ApiClient, Cursor, Page
from cgsync._endpoints import Endpoint
from cgsync._exceptions import ParametersRefusedError
from cgsync._logs import log_event
from cgsync._pages import walk_pages
from cgsync.settings import BACKFILL_READ_AHEAD_PAGES, PRIMARY_KEY

if TYPE_CHECKING:
    from cgsync._walks import Walker

WINDOW_FIELD = "date_creation"
"""Windows split the listing by this date: it never changes, so a record is in one window."""
HEAD_FIELDS = {"non_response": "date_sent", "response": "date_survey_response"}
"""Per record kind, the date that rises with the listing's key (arrival order)."""
LOWEST_DAY = date(1900, 1, 1)
HIGHEST_DAY = date(2999, 12, 31)

_QUEUE_PAGES_PER_WINDOW = 2
_PUT_POLL_SECONDS = 0.1


def plan_windows(oldest: date, newest: date, count: int) -> list[tuple[date, date]]:
    """`count` day ranges (inclusive) covering LOWEST_DAY..HIGHEST_DAY once, cut evenly
    between `oldest` and `newest` (fewer when there are fewer days than windows)."""
    if count < 1:
        raise ValueError(f"count must be 1 or more, got {count}")
    oldest = min(max(oldest, LOWEST_DAY), HIGHEST_DAY)
    newest = min(max(newest, oldest), HIGHEST_DAY)
    days = (newest - oldest).days + 1
    count = min(count, days)
    cuts = [oldest + timedelta(days=days * i // count) for i in range(1, count)]
    starts = [LOWEST_DAY, *cuts]
    ends = [cut - timedelta(days=1) for cut in cuts] + [HIGHEST_DAY]
    return list(zip(starts, ends, strict=True))


def backfill_wanted(walker: Walker, state: ResourceState, walk: WalkState) -> bool:
    """Whether this cycle of a v7 walk is (or becomes) a parallel backfill.

    Only an initial load (no stored cursor: a first run or `--full-refresh`) of a walk without
    its own period filter is parallelised; every later run is an ordinary periodic walk. An API
    that refused the head probe's period (`answer_period_refused`) is walked in one sequence.
    """
    if walk.phase is Phase.BACKFILL:
        return True
    return (
        walker.options.parallel > 1
        and not state.answer_period_refused
        and walk.phase is Phase.WALK
        and walk.cursor is None
        and walk.from_scratch
        and walker.filters.period_field is None
    )


def parallel_backfill(
    endpoint: Endpoint,
    walker: Walker,
    state: ResourceState,
    walk: WalkState,
    checkpoint: Checkpoint,
) -> Generator[ArrowPage, None, pa.Array | None]:
    """Walk the unfinished windows side by side until done or the checkpoint is over, then
    hand over; returns the CGIDs the windows read, which the walk from H leaves out in the
    same checkpoint.

    The windows' cursors are in `walk["backfill"]`, each committed as its page is accepted.
    The phase is `backfill` until every window has ended; after the hand-over it is `walk`
    from cursor H, as after a sequential walk stopped by a checkpoint. A head probe whose
    period the API refused leaves the walk to one sequence.
    """
    read: list[pa.Array] = []
    with walker.open_client() as client:
        try:
            if walk.phase is not Phase.BACKFILL:
                walk.start_backfill(_plan(endpoint, walker, client))
            plan = walk.backfill
            windows = [window for window in plan.windows if not window.done]
            walkers = _Windows(endpoint, walker, client, windows, checkpoint)
            for window, page, arrow in walkers.pages():
                walker.count(endpoint, page)
                if not checkpoint.accept(page, arrow, window):
                    return None
                state.note_newest(endpoint.record_kind, arrow.table)
                if arrow.table.num_rows:  # an empty page's column has no type
                    read.append(arrow.table[PRIMARY_KEY])
                yield arrow
        except ParametersRefusedError as refused:
            if walk.phase is Phase.BACKFILL:
                raise  # the windows' own period (date_creation) was refused
            # The head probe's `period[field]=date_survey_response`: walk in one sequence.
            log_event(
                "fallback",
                "%s: %s; walking it in one sequence",
                endpoint.resource,
                refused,
                level=logging.WARNING,
                resource=endpoint.resource,
                reason=str(refused),
            )
            state.refuse_answer_period()
            return None
    if all(window.done for window in plan.windows):
        walk.hand_over()
    return pa.chunked_array(read).combine_chunks() if read else None


def _plan(endpoint: Endpoint, walker: Walker, client: ApiClient) -> dict[str, Any]:
    """Probe the head (before any window starts), then cut the windows."""
    with _Probe(endpoint, walker, client) as probe:
        oldest, newest = probe.days(datetime.now(walker.source_timezone).date())
        head = probe.head(newest) if newest is not None else None
    oldest = oldest or newest or LOWEST_DAY
    windows = plan_windows(oldest, newest or oldest, walker.options.parallel)
    return BackfillPlan.new(head, [(start.isoformat(), end.isoformat()) for start, end in windows])


class _Probe:
    """Cheap requests, several at once, that find the head H and the days to cut between."""

    def __init__(self, endpoint: Endpoint, walker: Walker, client: ApiClient) -> None:
        self._endpoint = endpoint
        self._walker = walker
        self._client = client
        self._field = HEAD_FIELDS[endpoint.record_kind]
        self._width = 2 * walker.options.parallel  # days probed at once: small requests
        self._pool = ThreadPoolExecutor(self._width, thread_name_prefix="cgsync-probe")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(cancel_futures=True)

    def days(self, today: date) -> tuple[date | None, date | None]:
        """The `date_creation` day of the listing's first record, and the newest day with
        records by the head field (None, None: the listing is empty).

        The newest day is the API's, not the local clock's: `today` when they agree (one
        request), yesterday just after midnight (two), else searched between the oldest
        record and yesterday.
        """
        oldest = self._pool.submit(self._oldest_creation)
        if self._any_since(today):
            return oldest.result(), today
        # Just after midnight the newest records are yesterday's: one request, not a search.
        yesterday = today - timedelta(days=1)
        if self._any_since(yesterday):
            return oldest.result(), yesterday
        return oldest.result(), self._newest_day(yesterday, oldest.result())

    def head(self, newest: date) -> Cursor | None:
        """H: the highest key of the listing from `newest` on (its walk's last cursor)."""
        per_page = self._walker.per_page[self._endpoint.resource]
        head: Cursor | None = None
        while True:
            page = self._get(head, per_page, newest)
            if len(page):
                head = page.next_cursor
            if len(page) < per_page:  # the end: the empty page that would follow adds nothing
                return head

    def _oldest_creation(self) -> date | None:
        page = self._client.get_page(
            self._endpoint,
            cursor=None,
            per_page=1,
            params=self._walker.params(self._endpoint),
        )
        if not page.records or not page.records[0].get(WINDOW_FIELD):
            return None
        return date.fromisoformat(page.records[0][WINDOW_FIELD][:10])

    def _newest_day(self, empty_from: date, oldest: date | None) -> date | None:
        """The newest day with records before `empty_from`, if any."""
        for low in (oldest, LOWEST_DAY):
            if low is None or low >= empty_from:
                continue
            newest = self._search(low, empty_from)
            if newest != low or self._any_since(low):
                return newest
            empty_from = low
        return None

    def _search(self, low: date, high: date) -> date:
        """The newest day with records, if there are some from `low` on and none from `high`
        on: each round probes `width` days between them at once."""
        while (high - low).days > 1:
            span = (high - low).days
            days = sorted(
                {
                    low + timedelta(days=span * i // (self._width + 1))
                    for i in range(1, self._width + 1)
                }
                - {low}
            )
            for day, found in zip(days, self._pool.map(self._any_since, days), strict=True):
                if not found:
                    high = day
                    break
                low = day
        return low

    def _any_since(self, day: date) -> bool:
        return len(self._get(None, 1, day)) > 0

    def _get(self, cursor: Cursor | None, per_page: int, since: date) -> Page:
        filters = replace(
            self._walker.filters, period_field=self._field, since=since, until=HIGHEST_DAY
        )
        return self._client.get_page(
            self._endpoint,
            cursor=cursor,
            per_page=per_page,
            params=self._walker.params(self._endpoint, filters),
        )


_Item = tuple[Window, Page, ArrowPage]


class _Windows:
    """One thread per window, walking it to its end; their pages come out of `pages()`.

    The threads share the checkpoint's budget: a window stops before its next page once the
    checkpoint is over, and at most each other window's page in hand comes after the one that
    spent it. A window a checkpoint stopped leaves its reader in the sync's `ReadAhead`, still
    reading a few pages (BACKFILL_READ_AHEAD_PAGES), so that the windows go on fetching while
    dlt loads the checkpoint, and the next checkpoint's windows take those pages up (API calls
    still equal pages). They share the client too: one token, one connection pool, and one
    back-off when the API answers 429.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        walker: Walker,
        client: ApiClient,
        windows: list[Window],
        checkpoint: Checkpoint,
    ) -> None:
        self._endpoint = endpoint
        self._walker = walker
        self._client = client
        self._windows = windows
        self._checkpoint = checkpoint
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._queue: queue.Queue[_Item | BaseException | None] = queue.Queue(
            maxsize=_QUEUE_PAGES_PER_WINDOW * max(1, len(windows))
        )

    def pages(self) -> Iterator[_Item]:
        """Each window's pages in its own order (windows interleaved), until all have ended."""
        threads = [
            threading.Thread(target=self._run, args=(window,), name="cgsync-backfill", daemon=True)
            for window in self._windows
        ]
        for thread in threads:
            thread.start()
        running = len(threads)
        try:
            while running:
                item = self._queue.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            self._stop.set()

    def _run(self, window: Window) -> None:
        try:
            self._walk(window)
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer's thread
            self._put(exc)
        finally:
            self._put(None)

    def _walk(self, window: Window) -> None:
        filters = replace(
            self._walker.filters,
            period_field=WINDOW_FIELD,
            since=date.fromisoformat(window.start),
            until=date.fromisoformat(window.end),
        )
        params = self._walker.params(self._endpoint, filters)
        per_page = self._walker.per_page[self._endpoint.resource]
        pages = walk_pages(
            self._client,
            self._endpoint,
            cursor=window.cursor,
            per_page=per_page,
            params=params,
            budget=self,
            read_ahead=self._walker.read_ahead,
            read_ahead_pages=BACKFILL_READ_AHEAD_PAGES,
            stop_early=lambda: self.exhausted,
        )
        with closing(pages):  # a stopped walk parks its reader, or closes it
            for page in pages:
                arrow = self._walker.to_arrow(self._endpoint, page)
                if not self._put((window, page, arrow)):
                    return

    @property
    def exhausted(self) -> bool:
        """The checkpoint is over, or the windows were stopped (the walks' shared budget)."""
        return self._stop.is_set() or self._checkpoint.over

    def spend(self) -> None:
        """Count one page of the checkpoint's budget, taken by one of the windows."""
        with self._lock:
            self._checkpoint.budget.spend()

    def _put(self, item: _Item | BaseException | None) -> bool:
        """Hand `item` to the consumer unless it has stopped listening (then False)."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_PUT_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False
