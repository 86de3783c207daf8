"""The page walker: follows a sync endpoint's cursor, fetching the next page in the background."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator

from cgsync._client import ApiClient, Cursor, Page, QueryParams
from cgsync._endpoints import Endpoint
from cgsync._exceptions import ApiError

FetchPage = Callable[[Cursor | None], Page]


def walk_pages(
    client: ApiClient,
    endpoint: Endpoint,
    *,
    cursor: Cursor | None,
    per_page: int,
    params: QueryParams | None = None,
    prefetch: bool = True,
    max_pages: int | None = None,
) -> Generator[Page, None, None]:
    """Yield the pages of `endpoint` from `cursor` (None: from the start) to the end of the walk.

    The walk ends after a page with an empty `data` (v7; that page is yielded too) or with a
    null `cursor.next` (v6). After the last page, `page.resume_cursor` is the cursor to store.
    With `prefetch`, page n+1 is requested while the caller processes page n; at most two
    pages are held. An error fetching a page is raised when the caller asks for that page.
    `max_pages` stops the walk early (a checkpoint) without asking for a page it will not yield.
    """
    endpoint.check_per_page(per_page)
    if max_pages is not None and max_pages < 1:
        raise ValueError(f"max_pages must be 1 or more, got {max_pages}")

    def fetch(at: Cursor | None) -> Page:
        return client.get_page(endpoint, cursor=at, per_page=per_page, params=params)

    pending = _Prefetch(fetch, cursor) if prefetch else None
    pages_left = max_pages
    while True:
        page = pending.result() if pending is not None else fetch(cursor)
        if pages_left is not None:
            pages_left -= 1
        last = _is_last(page) or pages_left == 0
        if not last:
            if page.next_cursor == page.cursor:
                raise ApiError(
                    f"{endpoint.path} returned cursor {page.cursor!r} as its own next cursor: "
                    "stopping to avoid an endless walk"
                )
            if pending is not None:
                pending = _Prefetch(fetch, page.next_cursor)
        yield page
        if last:
            return
        cursor = page.next_cursor


def _is_last(page: Page) -> bool:
    return not page or page.next_cursor is None


class _Prefetch:
    """One page fetched in a daemon thread, so a request in flight never delays exit."""

    def __init__(self, fetch: FetchPage, cursor: Cursor | None) -> None:
        self._done = threading.Event()
        self._page: Page | None = None
        self._error: BaseException | None = None
        threading.Thread(
            target=self._run, args=(fetch, cursor), name="cgsync-prefetch", daemon=True
        ).start()

    def _run(self, fetch: FetchPage, cursor: Cursor | None) -> None:
        try:
            self._page = fetch(cursor)
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer's thread
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> Page:
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._page is not None
        return self._page
