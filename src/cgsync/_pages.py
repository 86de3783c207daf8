"""The page walker: follows a sync endpoint's cursor, reading pages ahead in the background.

A walk reads ahead in a daemon thread, a few pages before the caller. A walk that stops at a
checkpoint (its `Budget` is spent) leaves its reader in the sync's `ReadAhead`, still reading,
so that the next checkpoint's walk from the same cursor takes up the pages read while dlt
loaded the last ones.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Hashable
from typing import Protocol

from cgsync._client import ApiClient, Cursor, Page, QueryParams
from cgsync._endpoints import Endpoint
from cgsync._exceptions import ApiError
from cgsync.settings import READ_AHEAD_PAGES

FetchPage = Callable[[Cursor | None], Page]


class PageBudget(Protocol):
    """What a walk may still fetch (`cgsync._checkpoints.Budget`), spent a page at a time."""

    @property
    def exhausted(self) -> bool: ...

    def spend(self) -> None: ...


def walk_pages(
    client: ApiClient,
    endpoint: Endpoint,
    *,
    cursor: Cursor | None,
    per_page: int,
    params: QueryParams | None = None,
    prefetch: bool = True,
    budget: PageBudget | None = None,
    read_ahead: ReadAhead | None = None,
    read_ahead_pages: int = READ_AHEAD_PAGES,
    stop_early: Callable[[], bool] | None = None,
) -> Generator[Page, None, None]:
    """Yield the pages of `endpoint` from `cursor` (None: from the start) to the end of the walk.

    The walk ends after a page with an empty `data` (v7; that page is yielded too) or with a
    null `cursor.next` (v6). After the last page, `page.resume_cursor` is the cursor to store.
    With `prefetch`, up to READ_AHEAD_PAGES pages are read ahead of the caller; an error
    fetching a page is raised when the caller asks for that page. `budget` is spent a page at a
    time and stops the walk early (a checkpoint) once exhausted; with `read_ahead`, the pages
    after it are still read ahead there, for the next walk from that cursor. A budget shared by
    several walks (a backfill's windows) may be spent by another: `stop_early` is asked before
    each page, and True stops the walk there, its reader parked at that cursor. `per_page` is
    the source's, checked there.
    """

    def fetch(at: Cursor | None) -> Page:
        return client.get_page(endpoint, cursor=at, per_page=per_page, params=params)

    def key(at: Cursor | None) -> Hashable:
        query = tuple(sorted((name, str(value)) for name, value in (params or {}).items()))
        return (endpoint.path, per_page, query, at)

    reader: _Reader | None = None
    if prefetch:
        parked = read_ahead.claim(key(cursor)) if read_ahead is not None else None
        reader = parked or _Reader(fetch, cursor, read_ahead_pages)
    try:
        while True:
            if stop_early is not None and stop_early():
                if reader is not None and read_ahead is not None:
                    read_ahead.park(key(cursor), reader)
                    reader = None
                return
            page = reader.next() if reader is not None else fetch(cursor)
            if budget is not None:
                budget.spend()
            stop = budget is not None and budget.exhausted
            last = ends_walk(page)
            if not last:
                check_cursor_moves(endpoint, page)
            if not last and stop and reader is not None and read_ahead is not None:
                read_ahead.park(key(page.next_cursor), reader)
                reader = None
            yield page
            if last or stop:
                return
            cursor = page.next_cursor
    finally:
        if reader is not None:
            reader.close()


class ReadAhead:
    """The readers of the walks a checkpoint stopped, still reading, each until the walk that
    resumes where it stopped takes it up: one per sync, kept across its checkpoints, closed at
    its end (`contextlib.closing`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parked: dict[Hashable, _Reader] = {}

    def park(self, key: Hashable, reader: _Reader) -> None:
        """Keep a walk's page reader, still reading, until the walk that resumes at `key`."""
        with self._lock:
            replaced = self._parked.pop(key, None)
            self._parked[key] = reader
        if replaced is not None:
            replaced.close()

    def claim(self, key: Hashable) -> _Reader | None:
        """The reader parked at `key` (then no longer parked), or None."""
        with self._lock:
            return self._parked.pop(key, None)

    def close(self) -> None:
        """Stop every parked reader."""
        with self._lock:
            parked = list(self._parked.values())
            self._parked.clear()
        for reader in parked:
            reader.close()


def ends_walk(page: Page) -> bool:
    """An empty `data` ends a v7 walk, a null `next` a v6 one."""
    return not len(page) or page.next_cursor is None


def check_cursor_moves(endpoint: Endpoint, page: Page) -> None:
    """Raise ApiError if a page that does not end the walk names itself as the next one."""
    if page.next_cursor == page.cursor:
        raise ApiError(
            f"{endpoint.path} returned cursor {page.cursor!r} as its own next cursor: "
            "stopping to avoid an endless walk"
        )


class _Reader:
    """Fetches one walk's pages in order in a daemon thread, up to `depth` pages ahead.

    A daemon thread, so that a request in flight never delays exit.
    """

    def __init__(self, fetch: FetchPage, cursor: Cursor | None, depth: int) -> None:
        self._depth = depth
        self._ready: deque[Page] = deque()
        self._error: BaseException | None = None
        self._closed = False
        self._changed = threading.Condition()
        threading.Thread(
            target=self._run, args=(fetch, cursor), name="cgsync-read-ahead", daemon=True
        ).start()

    def _run(self, fetch: FetchPage, cursor: Cursor | None) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._closed or len(self._ready) < self._depth)
                if self._closed:
                    return
            try:
                page = fetch(cursor)
            except BaseException as exc:  # noqa: BLE001 - raised again in the consumer's thread
                with self._changed:
                    self._error = exc
                    self._changed.notify_all()
                return
            with self._changed:
                self._ready.append(page)
                self._changed.notify_all()
            # The walk ends here, or the consumer refuses a cursor that does not move.
            if ends_walk(page) or page.next_cursor == page.cursor:
                return
            cursor = page.next_cursor

    def next(self) -> Page:
        """The next page in order, once fetched; raises the error that ended the reading."""
        with self._changed:
            self._changed.wait_for(lambda: self._ready or self._error is not None)
            if not self._ready:
                assert self._error is not None
                raise self._error
            page = self._ready.popleft()
            self._changed.notify_all()
            return page

    def close(self) -> None:
        """Stop reading (a request in flight is left to finish) and drop the pages read."""
        with self._changed:
            self._closed = True
            self._ready.clear()
            self._changed.notify_all()
