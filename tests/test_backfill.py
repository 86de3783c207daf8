"""The parallel initial backfill (`--parallel K`): windows, hand-over, rate limit, resume.

The exactness checks are those of test_exactness.py: after each sync the lake equals the
emulator's truth (same CGIDs, no duplicates, statuses equal inside the refresh window).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dlt
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sync_lake import LakeReader, assert_exact, emulator_client, make_lake, sync_options
from timing import CAP_SECONDS, FakeClock, wait_until
from typer.testing import CliRunner, Result

from cgsync import Lake, SyncOptions, run_sync
from cgsync._backfill import HIGHEST_DAY, LOWEST_DAY, plan_windows
from cgsync._checkpoints import walk_state
from cgsync._client import ApiClient, RetryPolicy
from cgsync._endpoints import get_endpoint
from cgsync._lake import build_pipeline
from cgsync._pages import ReadAhead
from cgsync.cli import app
from cgsync.emulator import Emulator, Truth, _faults
from cgsync.emulator._faults import FaultDecision, FaultKind
from cgsync.source import ONE_RUN, SOURCE_NAME, customergauge_source

ZONE = "Europe/Amsterdam"
ROUNDS = (timedelta(hours=6), timedelta(hours=30), timedelta(days=4))
RESOURCES = ("responses", "non_responses")


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lake]:
    with make_lake("duckdb", tmp_path) as lake:
        yield lake


def parallel_options(emu: Emulator, lake: Lake, **changes: Any) -> SyncOptions:
    changes.setdefault("per_page", 100)
    changes.setdefault("parallel", 4)
    return sync_options(emu, lake, source_timezone=ZONE, **changes)


def periodic_rounds(emu: Emulator, lake: Lake, options: SyncOptions) -> None:
    """Advance the clock and sync again, exact after each round."""
    for advance in ROUNDS:
        emu.clock.advance(advance)
        run_sync(options)
        assert_exact(LakeReader(lake), emu.truth())


def assert_every_record(reader: LakeReader, truth: Truth) -> None:
    """Every response and open non-response is in the lake, once; after an initial load
    during which the clock moved, statuses may be stale until the next refresh window."""
    responses = reader.cgids("responses")
    assert sorted(responses) == sorted(truth.responses)
    non_responses = reader.cgids("non_responses")
    assert len(non_responses) == len(set(non_responses)), "duplicate non-responses"
    assert reader.open_cgids() == set(truth.non_responses)


def stored_walks(lake: Lake) -> dict[str, dict[str, Any]]:
    pipeline = build_pipeline(lake)
    pipeline.sync_destination()
    state = pipeline.state.get("sources", {}).get(SOURCE_NAME, {})
    return {name: walk_state(state, name, "all") for name in RESOURCES}


class ClockMover:
    """A page callback that advances the emulator's clock while the backfills walk.

    It advances on the first page and whenever a window ends (an empty page), as long as no
    resource has ended all its windows: each walks on from its hand-over cursor after its
    last window, so the lake can be compared with the truth once the sync is done.
    """

    def __init__(self, emu: Emulator, step: timedelta, windows: int) -> None:
        self._emu = emu
        self._step = step
        self._windows = windows
        self._ended: Counter[str] = Counter()
        self.advances = 0

    def __call__(self, resource: str, records: int) -> None:
        backfilling = all(ended < self._windows for ended in self._ended.values())
        if records == 0 and self._ended[resource] < self._windows:
            self._ended[resource] += 1
        elif self.advances:
            return
        if backfilling:
            self._emu.clock.advance(self._step)
            self.advances += 1


class InterruptAfterCheckpoint:
    """A page callback that presses Ctrl-C on the first page after a checkpoint is committed
    (the windows read ahead, so a page number alone may fall before the first one)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog

    def __call__(self, resource: str, records: int) -> None:
        if any(getattr(record, "event", None) == "checkpoint" for record in self._caplog.records):
            raise KeyboardInterrupt


@given(
    oldest=st.dates(min_value=date(1890, 1, 1), max_value=date(2100, 1, 1)),
    days=st.integers(min_value=-5, max_value=4000),
    count=st.integers(min_value=1, max_value=16),
)
def test_the_windows_cover_every_day_once(oldest: date, days: int, count: int) -> None:
    newest = oldest + timedelta(days=days)

    windows = plan_windows(oldest, newest, count)

    assert windows[0][0] == LOWEST_DAY
    assert windows[-1][1] == HIGHEST_DAY
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start == end + timedelta(days=1), "a gap or an overlap between windows"
    assert all(start <= end for start, end in windows)
    span = (min(max(newest, oldest), HIGHEST_DAY) - max(oldest, LOWEST_DAY)).days + 1
    assert len(windows) == min(count, max(span, 1))


def test_the_windows_are_cut_evenly_between_the_oldest_and_the_newest_day() -> None:
    windows = plan_windows(date(2024, 1, 1), date(2024, 12, 31), 4)  # 366 days

    assert [start for start, _ in windows[1:]] == [
        date(2024, 4, 1),  # day 91
        date(2024, 7, 2),  # day 183
        date(2024, 10, 1),  # day 274
    ]


@pytest.mark.parametrize("kind", ["duckdb", "delta"])
def test_a_parallel_initial_load_while_records_arrive_hands_over_exactly(
    emulator: Callable[..., Emulator], tmp_path: Path, kind: str
) -> None:
    # Windows of about ten days: late records, backdated 1 to 30 days, arrive while the
    # windows walk and land in windows that may have ended already. Records are answered
    # and fail meanwhile too.
    emu = emulator(records=3_000, seed=31, timezone=ZONE, history_days=40)
    mover = ClockMover(emu, timedelta(days=1), windows=4)
    with make_lake(kind, tmp_path) as lake:
        options = parallel_options(emu, lake, checkpoint_pages=6, per_page=50)

        summary = run_sync(options, on_page=mover)

        assert mover.advances >= 3, "the clock hardly moved during the backfill"
        assert summary.checkpoints > 2
        walks = stored_walks(lake)
        assert all(walk["complete"] and "backfill" not in walk for walk in walks.values())
        assert_every_record(LakeReader(lake), emu.truth())
        periodic_rounds(emu, lake, options)


class WindowRecorder(httpx.HTTPTransport):
    """Counts the backfill's window requests in flight at once, and the windows asked for.

    The first window request waits (up to CAP_SECONDS) for another one to be in flight, so that
    windows walked side by side are seen in flight together however the threads are scheduled.
    """

    def __init__(self) -> None:
        super().__init__()
        self.windows: set[tuple[str, str]] = set()
        self.most_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._side_by_side = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if params.get("period[field]") != "date_creation":
            return super().handle_request(request)
        with self._lock:
            first = not self.windows
            self.windows.add((request.url.path, params["period[start]"]))
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
            if self._in_flight > 1:
                self._side_by_side.set()
        try:
            if first:
                self._side_by_side.wait(CAP_SECONDS)
            return super().handle_request(request)
        finally:
            with self._lock:
                self._in_flight -= 1


def test_the_source_walks_date_creation_windows_side_by_side(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    emu = emulator(records=2_000, seed=32, timezone=ZONE)
    recorder = WindowRecorder()
    pipeline = build_pipeline(lake)
    with emulator_client(emu, transport=recorder) as client:
        options = replace(ONE_RUN, parallel=4, per_page=100, source_timezone=ZONE)
        source = partial(customergauge_source, options, client=client)
        pipeline.run(source())
        assert_exact(LakeReader(lake), emu.truth())
        emu.clock.advance(timedelta(days=1))
        pipeline.run(source())  # a periodic run, from the hand-over cursor

    assert len(recorder.windows) == 4 * len(RESOURCES)
    assert recorder.most_in_flight > 1, "the windows were walked one at a time"
    assert_exact(LakeReader(lake), emu.truth())


class WindowRequests(httpx.HTTPTransport):
    """Counts the requests of the backfill's windows, by endpoint, window and cursor."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: Counter[tuple[str, str, str | None]] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if params.get("period[field]") == "date_creation":
            key = (request.url.path, params["period[start]"], params.get("cursor"))
            self.requests[key] += 1
        return super().handle_request(request)


def test_windows_a_checkpoint_stopped_read_on_for_the_next_one_and_no_page_twice(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    emu = emulator(records=3_000, seed=37, timezone=ZONE)
    recorder = WindowRequests()
    pipeline = build_pipeline(lake)
    taken: Counter[str] = Counter()
    options = replace(ONE_RUN, parallel=4, per_page=50, checkpoint_pages=4, source_timezone=ZONE)
    with closing(ReadAhead()) as read_ahead, emulator_client(emu, transport=recorder) as client:

        def checkpoint() -> dict[str, Any]:
            source = customergauge_source(
                options,
                client=client,
                read_ahead=read_ahead,
                on_page=lambda resource, records: taken.update([resource]),
            )
            pipeline.run(source)
            return pipeline.state["sources"][SOURCE_NAME]

        checkpoint()
        # The first checkpoint took only window pages; its windows go on reading without it.
        first = sum(taken.values())
        wait_until(
            lambda: sum(recorder.requests.values()) > first, what="pages read past the checkpoint"
        )
        for _ in range(200):
            state = checkpoint()
            if all(walk_state(state, name, "all").get("complete") for name in RESOURCES):
                break

    assert len({(path, start) for path, start, _ in recorder.requests}) == 4 * len(RESOURCES)
    twice = [key for key, count in recorder.requests.items() if count > 1]
    assert not twice, f"window pages fetched twice: {twice}"
    assert_exact(LakeReader(lake), emu.truth())


def test_a_429_storm_backs_the_whole_pool_off_and_stays_exact(
    emulator: Callable[..., Emulator], lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rate limit's clock moves only by the Retry-After of each 429 (which the pool waits out
    # for real): one request in 16 is over the limit, however fast the sync really runs.
    clock = FakeClock()
    monkeypatch.setattr(_faults, "monotonic", clock)
    emu = emulator(records=2_000, seed=33, timezone=ZONE)
    emu.faults.update(rate_limit=15, retry_after_seconds=1)
    decide = emu.faults.decide

    def decide_then_wait_out() -> FaultDecision:
        decision = decide()
        if decision.kind is FaultKind.TOO_MANY_REQUESTS:
            clock.now += decision.retry_after_seconds
        return decision

    monkeypatch.setattr(emu.faults, "decide", decide_then_wait_out)
    options = parallel_options(emu, lake, checkpoint_pages=20)

    summary = run_sync(options)

    assert summary.retries.get("rate limited", 0) > 0, "the rate limit was never reached"
    assert_exact(LakeReader(lake), emu.truth())
    emu.clock.advance(timedelta(hours=8))
    run_sync(options)
    assert_exact(LakeReader(lake), emu.truth())


def test_a_429_holds_back_the_other_threads_too(caplog: pytest.LogCaptureFixture) -> None:
    endpoint = get_endpoint("non_responses")
    hold = 0.4
    arrivals: list[tuple[str, float]] = []
    first_refused = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        who = request.url.params["cursor"]
        arrivals.append((who, time.monotonic()))
        if who == "1" and not first_refused.is_set():
            first_refused.set()
            return httpx.Response(429, headers={"Retry-After": str(hold)}, json={})
        return httpx.Response(200, json={"data": [], "cursor": {"next": None}})

    with (
        caplog.at_level(logging.WARNING, logger="cgsync"),
        ApiClient(
            client_id="id",
            client_secret="secret",
            auth_url="http://auth.test/oauth2/token",
            api_url="http://api.test",
            retry=RetryPolicy(base_delay=0),
            transport=httpx.MockTransport(handler),
        ) as client,
    ):
        refused = threading.Thread(
            target=client.get_page, args=(endpoint,), kwargs={"cursor": 1, "per_page": 10}
        )
        refused.start()
        # The client logs the retry once it has set the back-off that holds back every thread.
        wait_until(lambda: caplog.records, what="the refused request's retry")
        client.get_page(endpoint, cursor=2, per_page=10)
        refused.join()

    refusal = next(at for who, at in arrivals if who == "1")
    other = next(at for who, at in arrivals if who == "2")
    assert other - refusal >= hold * 0.9, "another thread asked during the back-off"


def test_an_interrupted_backfill_resumes_its_windows_and_ends_exact(
    emulator: Callable[..., Emulator], lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    emu = emulator(records=3_000, seed=34, timezone=ZONE)
    options = parallel_options(emu, lake, checkpoint_pages=4)

    with pytest.raises(KeyboardInterrupt), caplog.at_level(logging.INFO, logger="cgsync"):
        run_sync(options, on_page=InterruptAfterCheckpoint(caplog))

    interrupted = stored_walks(lake)
    assert any(walk.get("phase") == "backfill" for walk in interrupted.values())
    windows = [
        w for walk in interrupted.values() for w in walk.get("backfill", {}).get("windows", [])
    ]
    assert any(w["cursor"] is not None for w in windows), "no window had a checkpoint"
    assert not all(w["done"] for w in windows), "nothing was left to resume"
    emu.clock.advance(timedelta(hours=12))

    run_sync(options)

    assert_every_record(LakeReader(lake), emu.truth())
    periodic_rounds(emu, lake, options)


@pytest.mark.parametrize(
    ("hours_after_midnight", "probes"),
    [
        # At noon of our day in the API's zone its newest records are today's at any hour we
        # run: the oldest record, "anything since today?", the listing since today.
        pytest.param(12, 3, id="today"),
        # An hour before our midnight its newest records are yesterday's: "anything since
        # today?" is no, "since yesterday?" is yes, and no search over the calendar follows.
        pytest.param(-1, 4, id="just-after-midnight"),
    ],
)
def test_the_head_probe_costs_three_calls_today_and_one_more_just_after_midnight(
    emulator: Callable[..., Emulator], lake: Lake, hours_after_midnight: int, probes: int
) -> None:
    midnight = datetime.now(ZoneInfo(ZONE)).replace(hour=0, minute=0, second=0, microsecond=0)
    start = (midnight + timedelta(hours=hours_after_midnight)).astimezone(UTC)
    emu = emulator(records=3_000, seed=39, timezone=ZONE, start=start, history_days=30)
    pages = Counter[str]()

    summary = run_sync(
        parallel_options(emu, lake, per_page=500),
        on_page=lambda resource, records: pages.update([resource]),
    )

    # Per resource: the probes, beside its pages and the pages of the refresh windows (which
    # the summary counts apart).
    refreshed = sum(resource.refresh_pages for resource in summary.resources.values())
    assert summary.api_calls - sum(pages.values()) - refreshed == probes * len(RESOURCES)
    assert_exact(LakeReader(lake), emu.truth())


def test_parallel_applies_to_the_initial_load_only(
    emulator: Callable[..., Emulator], lake: Lake
) -> None:
    emu = emulator(records=1_000, seed=35, timezone=ZONE)
    options = parallel_options(emu, lake)
    run_sync(options)
    emu.clock.advance(timedelta(hours=6))
    calls_before = emu.stats()["api_calls"]

    summary = run_sync(options)

    # A periodic run: one walk from each cursor plus each resource's refresh window.
    assert emu.stats()["api_calls"] - calls_before == summary.api_calls
    walked = sum(r.pages for r in summary.resources.values())
    refreshed = sum(r.refresh_pages for r in summary.resources.values())
    assert summary.api_calls == walked + refreshed
    assert walked <= 2 * len(RESOURCES) and refreshed <= 2 * len(RESOURCES)
    assert_exact(LakeReader(lake), emu.truth())


def test_parallel_one_is_the_sequential_walk(emulator: Callable[..., Emulator], lake: Lake) -> None:
    emu = emulator(records=1_000, seed=36, timezone=ZONE)
    options = parallel_options(emu, lake, parallel=1, per_page=200)

    summary = run_sync(options)

    # Each resource walks its pages and ends on one empty page: no probes, no windows (the
    # responses then re-read their refresh window, counted apart).
    records = sum(r.records for r in summary.resources.values())
    pages = sum(r.pages + r.refresh_pages for r in summary.resources.values())
    assert summary.api_calls == pages
    assert records == len(emu.truth().responses) + len(emu.truth().non_responses)


def cgsync_sync(emu: Emulator, lake_dir: Path, *args: str) -> Result:
    """`cgsync sync <args>` against `emu`, into a DuckDB file in `lake_dir`."""
    env = {
        "CUSTOMERGAUGE_CLIENT_ID": emu.client_id,
        "CUSTOMERGAUGE_CLIENT_SECRET": emu.client_secret,
        "CUSTOMERGAUGE_AUTH_URL": emu.token_url,
        "CUSTOMERGAUGE_API_URL": emu.base_url,
        "DESTINATION__DUCKDB__CREDENTIALS": str(lake_dir / "lake.duckdb"),
    }
    arguments = ["sync", *args, "--pipelines-dir", str(lake_dir / "pipelines")]
    return CliRunner().invoke(app, arguments, env=env)


def test_cgsync_sync_parallel_loads_exactly(
    emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = emulator(records=1_000, seed=37, timezone=ZONE)

    result = cgsync_sync(emu, tmp_path, "--parallel", "3", "--source-timezone", ZONE, "--quiet")

    assert result.exit_code == 0, result.stderr
    lake = Lake(
        dlt.destinations.duckdb(str(tmp_path / "lake.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    assert_exact(LakeReader(lake), emu.truth())


def test_parallel_below_one_exits_2_before_any_call(
    emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = emulator(records=100, seed=38)

    result = cgsync_sync(emu, tmp_path, "--parallel", "0")

    assert result.exit_code == 2
    assert result.stderr == "error: --parallel must be at least 1, got 0\n"
    assert emu.stats()["api_calls"] == 0
