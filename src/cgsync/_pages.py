"""The page walker: follows a sync endpoint's cursor, reading pages ahead in the background.

A walk reads ahead in a daemon thread, a few pages before the caller. A walk that stops at a
checkpoint (its `Budget` is spent) leaves its reader with the client, still reading, so that the
next checkpoint's walk from the same cursor takes up the pages read while dlt loaded the last ones.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Hashable

from cgsync._client import ApiClient, Cursor, Page, QueryParams
from cgsync._endpoints import Endpoint
from cgsync._exceptions import ApiError
from cgsync.settings import READ_AHEAD_PAGES

FetchPage = Callable[[Cursor | None], Page]


def walk_pages(
    client: ApiClient,
    endpoint: Endpoint,
    *,
    cursor: Cursor | None,
    per_page: int,
    params: QueryParams | None = None,
    prefetch: bool = True,
    budget: Budget | None = None,
) -> Generator[Page, None, None]:
    """Yield the pages of `endpoint` from `cursor` (None: from the start) to the end of the walk.

    The walk ends after a page with an empty `data` (v7; that page is yielded too) or with a
    null `cursor.next` (v6). After the last page, `page.resume_cursor` is the cursor to store.
    With `prefetch`, up to READ_AHEAD_PAGES pages are read ahead of the caller; an error
    fetching a page is raised when the caller asks for that page. `budget` is spent a page at a
    time and stops the walk early (a checkpoint) once exhausted; the pages after it are still
    read ahead, for the next walk from there.
    """
    endpoint.check_per_page(per_page)

    def fetch(at: Cursor | None) -> Page:
        return client.get_page(endpoint, cursor=at, per_page=per_page, params=params)

    def key(at: Cursor | None) -> Hashable:
        query = tuple(sorted((name, str(value)) for name, value in (params or {}).items()))
        return (endpoint.path, per_page, query, at)

    reader: _Reader | None = None
    if prefetch:
        parked = client.claim_parked(key(cursor))
        reader = parked if isinstance(parked, _Reader) else _Reader(fetch, cursor)
    try:
        while True:
            page = reader.next() if reader is not None else fetch(cursor)
            if budget is not None:
                budget.spend()
            stop = budget is not None and budget.exhausted
            last = ends_walk(page)
            if not last:
                check_cursor_moves(endpoint, page)
            if not last and stop and reader is not None:
                client.park(key(page.next_cursor), reader)
                reader = None
            yield page
            if last or stop:
                return
            cursor = page.next_cursor
    finally:
        if reader is not None:
            reader.close()


class Budget:
    """What one checkpoint of one walk may still fetch: a number of pages, and a time.

    Whether it is exhausted is decided as each page is counted, so that every reader of
    `exhausted` agrees on the page that ended the checkpoint.
    """

    def __init__(self, pages: int | None, seconds: float | None = None) -> None:
        if pages is not None and pages < 1:
            raise ValueError(f"a checkpoint's pages must be 1 or more, got {pages}")
        if seconds is not None and seconds <= 0:
            raise ValueError(f"a checkpoint's seconds must be more than 0, got {seconds}")
        self.left = pages
        self._deadline = None if seconds is None else time.monotonic() + seconds
        self.exhausted = False

    def spend(self) -> None:
        """Count one page fetched."""
        if self.left is not None:
            self.left -= 1
        self.exhausted = (self.left is not None and self.left <= 0) or (
            self._deadline is not None and time.monotonic() >= self._deadline
        )


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
    """Fetches one walk's pages in order in a daemon thread, up to READ_AHEAD_PAGES ahead.

    A daemon thread, so that a request in flight never delays exit.
    """

    def __init__(self, fetch: FetchPage, cursor: Cursor | None) -> None:
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
                self._changed.wait_for(lambda: self._closed or len(self._ready) < READ_AHEAD_PAGES)
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
