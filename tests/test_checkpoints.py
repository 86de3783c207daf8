"""The walk and checkpoint state: the stored layout, budgets, and what a checkpoint accepts."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import dlt
import pytest

from cgsync import _checkpoints, customergauge_source
from cgsync._arrow import ArrowPage
from cgsync._batches import batches
from cgsync._checkpoints import (
    CGID_SPAN,
    Budget,
    Checkpoint,
    Phase,
    ResourceState,
    WalkState,
)
from cgsync._client import Page
from cgsync.source import ONE_RUN
from tests.test_batches import page
from tests.test_source import START, ListingApi, answer, invitation, pipeline, rows, walks

__all__ = ["pipeline"]  # the fixture: a DuckDB pipeline in tmp_path

STORED = [
    {
        "walks": {
            "all": {"cursor": 69891, "complete": True, "phase": "done"},
            "outbound:country-nl": {"cursor": 1204, "complete": False, "phase": "walk"},
        },
        "newest_date_sent": "2026-11-26T08:00:00+00:00",
    },
    {
        "walks": {
            "all": {
                "cursor": 300,
                "complete": False,
                "phase": "refresh",
                "from_scratch": False,
                "ladder": [[None, "2024-03-01T09:00:00+00:00"], [100, None]],
                "refresh": {"from_ladder": True, "cursor": 100},
            }
        },
        "newest_date_survey_response": "2024-03-02T10:00:00+00:00",
        "answer_period_refused": True,
    },
    {
        "walks": {
            "all": {
                "cursor": None,
                "complete": False,
                "phase": "backfill",
                "from_scratch": True,
                "backfill": {
                    "head": 900,
                    "windows": [
                        {"start": "1900-01-01", "end": "2024-02-29", "cursor": 40, "done": True},
                        {"start": "2024-03-01", "end": "2999-12-31", "cursor": None, "done": False},
                    ],
                },
            }
        },
        "failed": "responses: 500",
    },
]


def read_all(state: ResourceState) -> list[Any]:
    """Every typed field of `state`, read."""
    seen: list[Any] = [state.failed, state.answer_period_refused]
    seen += [state.newest("response"), state.newest("non_response")]
    for raw in state.raw["walks"].values():
        walk = WalkState(raw)
        seen += [walk.cursor, walk.complete, walk.phase, walk.from_scratch]
        if "refresh" in raw:
            refresh = walk.refresh
            seen += [refresh.from_ladder, refresh.cursor]
        if "backfill" in raw:
            plan = walk.backfill
            seen += [plan.head, *[(w.start, w.end, w.cursor, w.done) for w in plan.windows]]
    return seen


@pytest.mark.parametrize("stored", STORED)
def test_reading_the_typed_state_leaves_the_stored_layout_as_it_was(stored: dict[str, Any]) -> None:
    raw = copy.deepcopy(stored)

    read_all(ResourceState(raw))

    assert raw == stored


def test_the_phases_are_the_stored_names() -> None:
    assert [phase.value for phase in Phase] == ["walk", "walking", "backfill", "refresh", "done"]
    assert WalkState({"cursor": 1, "phase": "walking"}).phase is Phase.WALKING


def test_a_new_cycle_begins_only_after_the_last_one_ended() -> None:
    raw: dict[str, Any] = {"walks": {"all": {"cursor": 7, "complete": False, "phase": "refresh"}}}
    state = ResourceState(raw)

    assert state.begin("all").phase is Phase.REFRESH
    raw["walks"]["all"]["complete"] = True
    state.begin("all")
    assert raw["walks"]["all"] == {
        "cursor": 7,
        "complete": False,
        "phase": "walk",
        "from_scratch": False,
    }
    state.begin("all", full_refresh=True)
    assert raw == {
        "walks": {"all": {"cursor": None, "complete": False, "phase": "walk", "from_scratch": True}}
    }


def test_a_budget_ends_at_the_page_that_spends_its_last_page_or_passes_its_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(_checkpoints, "monotonic", lambda: now[0])
    by_pages, by_time = Budget(2), Budget(None, seconds=0.05)
    by_pages.spend()
    by_time.spend()
    assert not by_pages.exhausted and not by_time.exhausted
    by_pages.spend()
    now[0] += 0.06
    assert not by_time.exhausted  # decided when a page is counted
    by_time.spend()
    assert by_pages.exhausted and by_time.exhausted


def numbered(pages: list[ArrowPage]) -> Iterator[tuple[Page, ArrowPage]]:
    """Each page with a Page fetched at cursor 10 * its number (the first without one)."""
    for number, arrow in enumerate(pages):
        cursor = 10 * number or None
        yield Page(records=[], cursor=cursor, next_cursor=10 * (number + 1)), arrow


def accepted(
    checkpoint: Checkpoint, walk: WalkState, pages: Iterable[tuple[Page, ArrowPage]]
) -> Iterator[ArrowPage]:
    """The pages a walk puts into `checkpoint`: each it accepts, until it is over."""
    for each, arrow in pages:
        if not checkpoint.accept(each, arrow, walk):
            return
        yield arrow
        if checkpoint.over:
            return


def test_a_checkpoint_ends_before_a_page_that_brings_a_record_again() -> None:
    pages = [
        page("response", [answer(1, START, ["old"]), answer(2, START, ["x"])]),
        page("response", [answer(3, START, ["y"])]),
        page("response", [answer(1, START, ["new"]) | {"nps": 10}]),
        page("response", [answer(4, START)]),
    ]
    taken = []

    def walk() -> Any:
        for each in numbered(pages):
            taken.append(each)
            yield each

    state = WalkState({"cursor": None})
    result: dict[str, list[dict[str, Any]]] = {}
    for name, table in batches("responses", accepted(Checkpoint(None), state, walk())):
        result.setdefault(name, []).extend(table.to_pylist())

    assert [r["number_customergauge"] for r in result["responses"]] == [1, 2, 3]
    assert [r["value"] for r in result["responses__tags"]] == ["old", "x", "y"]
    assert len(taken) == 3, "the page after the repeated record is left to the next checkpoint"
    assert state.cursor == 20, "the cursor stays before the page refused"


def test_a_page_whose_cgids_are_too_far_apart_to_hold_goes_alone_and_the_walk_goes_on() -> None:
    far = [answer(1, START), answer(1 + CGID_SPAN, START)]
    pages = [page("response", far), page("response", [answer(2, START)])]

    def checkpoint_rows(pages: list[ArrowPage]) -> list[int]:
        taken = accepted(Checkpoint(None), WalkState({"cursor": None}), numbered(pages))
        return [table.num_rows for _, table in batches("responses", taken)]

    first = checkpoint_rows(pages)
    later = checkpoint_rows(pages[1:])

    assert first[0] == 2 and later[0] == 1


@pytest.mark.parametrize("per_page", [1, 2])
def test_a_record_listed_twice_in_one_walk_is_in_the_lake_once_as_last_read(
    pipeline: dlt.Pipeline, per_page: int
) -> None:
    """The API lists invitation 1 again at its end, updated: the run ends before
    that page, and the next one merges it."""
    listing = [invitation(1, START), invitation(2, START), invitation(1, START, "survey-opened")]
    api = ListingApi({"non_responses": listing})
    runs = 0
    while not runs or not walks(pipeline, "non_responses")["all"]["complete"]:
        runs += 1
        pipeline.run(
            customergauge_source(
                replace(
                    ONE_RUN,
                    endpoints=("non_responses",),
                    per_page=per_page,
                    refresh_window=timedelta(0),
                ),
                client=api,
            )
        )

    assert runs == 2
    assert rows(pipeline, "select number_customergauge, status from non_responses order by 1") == [
        (1, "survey-opened"),
        (2, "survey-sent"),
    ]


def test_a_walk_goes_on_after_a_page_whose_cgids_are_too_far_apart_to_hold(
    pipeline: dlt.Pipeline,
) -> None:
    listing = [invitation(1, START), invitation(1 + CGID_SPAN, START), invitation(2, START)]
    api = ListingApi({"non_responses": listing})
    for _ in range(2):
        pipeline.run(
            customergauge_source(
                replace(
                    ONE_RUN, endpoints=("non_responses",), per_page=2, refresh_window=timedelta(0)
                ),
                client=api,
            )
        )

    assert walks(pipeline, "non_responses")["all"]["complete"] is True
    assert rows(pipeline, "select count(*) from non_responses") == [(3,)]
