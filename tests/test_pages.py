"""walk_pages: whole walks against the emulator, the end of a walk, read-ahead, errors in flight."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from typing import Any

import pytest
from scripted_server import Recorded, Reply, ScriptedServer, connect, page
from sync_lake import EVERY_FAULT, emulator_client

from cgsync import ApiError
from cgsync._checkpoints import Budget
from cgsync._client import ApiClient, RetryPolicy
from cgsync._endpoints import ENDPOINTS, Endpoint
from cgsync._pages import ReadAhead, walk_pages
from cgsync.emulator import Emulator
from cgsync.settings import READ_AHEAD_PAGES

RESPONSES = ENDPOINTS["responses"]
NON_RESPONSES = ENDPOINTS["non_responses"]
V6 = ENDPOINTS["responses_v6"]
FAST_RETRY = RetryPolicy(max_attempts=8, base_delay=0.001, max_delay=0.01)


def fast_client(emu: Emulator) -> ApiClient:
    return emulator_client(emu, retry=FAST_RETRY)


def cgids(pages: list[Any]) -> list[int]:
    return [record["number_customergauge"] for page in pages for record in page.records]


@pytest.mark.parametrize("prefetch", [True, False])
def test_a_v7_walk_reads_every_record_once_and_ends_on_an_empty_page(
    emulator: Any, prefetch: bool
) -> None:
    emu = emulator(records=1_500, seed=3)
    with fast_client(emu) as client:
        pages = list(walk_pages(client, RESPONSES, cursor=None, per_page=100, prefetch=prefetch))

        assert client.stats.api_calls == len(pages)
        assert client.stats.token_calls == 1
    assert sorted(cgids(pages)) == sorted(emu.truth().responses)
    assert len(set(cgids(pages))) == len(cgids(pages))
    assert pages[-1].records == [] and all(page.records for page in pages[:-1])
    assert [page.cursor for page in pages[1:]] == [page.next_cursor for page in pages[:-1]]


def test_a_periodic_walk_from_the_stored_cursor_reads_only_what_is_new(emulator: Any) -> None:
    emu = emulator(records=1_000, seed=5, history_days=10)
    with fast_client(emu) as client:
        initial = list(walk_pages(client, NON_RESPONSES, cursor=None, per_page=1000))
        emu.clock.advance(timedelta(hours=12))
        periodic = list(
            walk_pages(client, NON_RESPONSES, cursor=initial[-1].resume_cursor, per_page=1000)
        )

    seen_first, seen_later = set(cgids(initial)), set(cgids(periodic))
    assert seen_later and not seen_first & seen_later
    # Everything still unanswered now was either seen initially or read by the periodic walk.
    assert set(emu.truth().non_responses) <= seen_first | seen_later


def test_a_v6_walk_ends_on_a_null_next_and_resumes_from_the_last_cursor(emulator: Any) -> None:
    emu = emulator(records=1_500, seed=3)
    with fast_client(emu) as client:
        pages = list(walk_pages(client, V6, cursor=None, per_page=50))
        again = list(walk_pages(client, V6, cursor=pages[-1].resume_cursor, per_page=50))

    assert len(pages) > 2 and pages[-1].next_cursor is None
    assert pages[-1].resume_cursor == pages[-1].cursor and isinstance(pages[-1].cursor, str)
    assert sorted(cgids(pages)) == sorted(emu.truth().responses)
    assert cgids(again) == cgids(pages[-1:])  # re-reading the last page is harmless


def test_a_walk_through_every_fault_is_still_exact(emulator: Any) -> None:
    emu = emulator(records=3_000, seed=11)
    emu.faults.update(**EVERY_FAULT)
    with fast_client(emu) as client:
        pages = list(walk_pages(client, RESPONSES, cursor=None, per_page=100))

        assert client.stats.total_retries > 0
    assert sorted(cgids(pages)) == sorted(emu.truth().responses)


class TwoPages:
    """A scripted API: cursor absent -> page 1 (next 1), cursor 1 -> page 2 (next 2), then empty."""

    def __init__(self, server: ScriptedServer, endpoint: Endpoint) -> None:
        self.second_requested = threading.Event()
        server.route(endpoint.path, self.answer)

    def answer(self, request: Recorded) -> Reply:
        cursor = int(request.query.get("cursor", ["0"])[0])
        if cursor == 1:
            self.second_requested.set()
        return page([{"number_customergauge": cursor + 1}] if cursor < 2 else [], cursor + 1)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def test_prefetch_asks_for_the_next_page_while_the_caller_holds_this_one(
    server: ScriptedServer,
) -> None:
    api = TwoPages(server, RESPONSES)
    with connect(server) as client:
        walker = walk_pages(client, RESPONSES, cursor=None, per_page=10)
        next(walker)
        assert api.second_requested.wait(timeout=10)
        assert [page.next_cursor for page in walker] == [2, 3]


def test_without_prefetch_nothing_is_asked_ahead(server: ScriptedServer) -> None:
    api = TwoPages(server, RESPONSES)
    with connect(server) as client:
        walker = walk_pages(client, RESPONSES, cursor=None, per_page=10, prefetch=False)
        next(walker)
        assert len(server.requests_to(RESPONSES.path)) == 1
        assert not api.second_requested.is_set()
        walker.close()


def test_an_error_on_a_later_page_comes_after_the_pages_before_it(server: ScriptedServer) -> None:
    server.script(RESPONSES.path, page([{"number_customergauge": 1}], 1), *[Reply(500)] * 4)
    with connect(server) as client:
        walker = walk_pages(client, RESPONSES, cursor=None, per_page=10)
        assert cgids([next(walker)]) == [1]
        with pytest.raises(ApiError, match="failed after 4 attempts: 500"):
            next(walker)


def test_a_cursor_that_does_not_move_stops_the_walk(server: ScriptedServer) -> None:
    server.route(RESPONSES.path, lambda request: page([{"number_customergauge": 1}], 5))
    with connect(server) as client, pytest.raises(ApiError, match="as its own next cursor"):
        list(walk_pages(client, RESPONSES, cursor=5, per_page=10))


def test_the_next_checkpoint_takes_up_the_pages_read_ahead_across_the_boundary(
    server: ScriptedServer,
) -> None:
    api = TwoPages(server, RESPONSES)
    with connect(server) as client, closing(ReadAhead()) as read_ahead:
        [first] = walk_pages(
            client, RESPONSES, cursor=None, per_page=10, budget=Budget(1), read_ahead=read_ahead
        )
        assert api.second_requested.wait(timeout=10)  # while the checkpoint is being loaded
        rest = list(
            walk_pages(
                client, RESPONSES, cursor=first.resume_cursor, per_page=10, read_ahead=read_ahead
            )
        )

    assert [page.next_cursor for page in rest] == [2, 3]
    assert len(server.requests_to(RESPONSES.path)) == 3


def test_a_walk_from_another_cursor_reads_for_itself(server: ScriptedServer) -> None:
    TwoPages(server, RESPONSES)
    with connect(server) as client, closing(ReadAhead()) as read_ahead:
        list(
            walk_pages(
                client, RESPONSES, cursor=None, per_page=10, budget=Budget(1), read_ahead=read_ahead
            )
        )
        again = list(walk_pages(client, RESPONSES, cursor=None, per_page=10, read_ahead=read_ahead))

    assert [page.cursor for page in again] == [None, 1, 2]


class EndlessPages:
    """A scripted API that always has one more page; each request is checked against the pages
    the caller has taken (`taken`, counted before it asks), and can be waited for."""

    def __init__(self, server: ScriptedServer, endpoint: Endpoint) -> None:
        self.taken = 0
        self.requests = 0
        self.too_far_ahead: list[int] = []
        self._changed = threading.Condition()
        server.route(endpoint.path, self.answer)

    def answer(self, request: Recorded) -> Reply:
        with self._changed:
            self.requests += 1
            if self.requests > self.taken + READ_AHEAD_PAGES:
                self.too_far_ahead.append(self.requests)
            self._changed.notify_all()
        cursor = int(request.query.get("cursor", ["0"])[0])
        return page([{"number_customergauge": cursor + 1}], cursor + 1)

    def wait_for_requests(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.requests >= count, timeout=60)


def test_reading_ahead_stops_a_few_pages_ahead(server: ScriptedServer) -> None:
    api = EndlessPages(server, RESPONSES)
    with connect(server) as client:
        walker = walk_pages(client, RESPONSES, cursor=None, per_page=10)
        api.taken += 1
        next(walker)

        def requests() -> int:
            return len(server.requests_to(RESPONSES.path))

        assert api.wait_for_requests(1 + READ_AHEAD_PAGES)
        assert requests() == 1 + READ_AHEAD_PAGES
        # Only the page taken next lets the reader ask for one more.
        api.taken += 1
        next(walker)
        assert api.wait_for_requests(2 + READ_AHEAD_PAGES)
        walker.close()
    assert api.too_far_ahead == []
