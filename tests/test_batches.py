"""checkpoint_batches: a checkpoint's pages as batches of tables, each record once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dlt
import pytest

from cgsync import customergauge_source
from cgsync._arrow import ArrowPage, records_to_arrow
from cgsync._batches import CGID_SPAN, checkpoint_batches
from tests.test_source import START, ListingApi, answer, invitation, pipeline, rows, walks

SYNCED_AT = datetime(2026, 1, 2, tzinfo=UTC)
__all__ = ["pipeline"]  # the fixture: a DuckDB pipeline in tmp_path


def page(kind: str, records: list[dict[str, Any]]) -> ArrowPage:
    return records_to_arrow(records, kind, source_timezone="UTC", synced_at=SYNCED_AT)


def tables(pages: list[ArrowPage]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, table in checkpoint_batches("responses", pages):
        rows.setdefault(name, []).extend(table.to_pylist())
    return rows


def test_records_seen_once_pass_through_in_order_with_all_their_child_rows() -> None:
    pages = [
        page("response", [answer(1, START, ["a", "b"]), answer(2, START, [])]),
        page("response", [answer(3, START, ["c"])]),
    ]

    result = tables(pages)

    assert [row["number_customergauge"] for row in result["responses"]] == [1, 2, 3]
    assert [
        (r["number_customergauge"], r["position"], r["value"]) for r in result["responses__tags"]
    ] == [
        (1, 0, "a"),
        (1, 1, "b"),
        (3, 0, "c"),
    ]


def test_a_checkpoint_ends_before_a_page_that_brings_a_record_again() -> None:
    pages = [
        page("response", [answer(1, START, ["old"]), answer(2, START, ["x"])]),
        page("response", [answer(3, START, ["y"])]),
        page("response", [answer(1, START, ["new"]) | {"nps": 10}]),
        page("response", [answer(4, START)]),
    ]
    taken = []

    def walk() -> Any:
        for each in pages:
            taken.append(each)
            yield each

    result: dict[str, list[dict[str, Any]]] = {}
    for name, table in checkpoint_batches("responses", walk()):
        result.setdefault(name, []).extend(table.to_pylist())

    assert [r["number_customergauge"] for r in result["responses"]] == [1, 2, 3]
    assert [r["value"] for r in result["responses__tags"]] == ["old", "x", "y"]
    assert len(taken) == 3, "the page after the repeated record is left to the next checkpoint"


def test_a_record_twice_in_one_page_is_kept_once() -> None:
    pages = [
        page(
            "response", [answer(1, START, ["a"]) | {"nps": 1}, answer(1, START, ["a"]) | {"nps": 9}]
        )
    ]

    result = tables(pages)

    assert [(r["number_customergauge"], r["nps"]) for r in result["responses"]] == [(1, 9)]
    assert [(r["number_customergauge"], r["position"]) for r in result["responses__tags"]] == [
        (1, 0)
    ]


def test_empty_pages_give_no_tables_and_empty_child_lists_no_child_table() -> None:
    assert tables([page("response", [])]) == {}
    result = tables([page("response", [answer(1, START, [])])])
    assert set(result) == {"responses"}


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
                endpoints=["non_responses"],
                per_page=per_page,
                client=api,
                refresh_window=timedelta(0),
            )
        )

    assert runs == 2
    assert rows(pipeline, "select number_customergauge, status from non_responses order by 1") == [
        (1, "survey-opened"),
        (2, "survey-sent"),
    ]


def test_a_page_whose_cgids_are_too_far_apart_to_hold_goes_alone_and_the_walk_goes_on() -> None:
    far = [answer(1, START), answer(1 + CGID_SPAN, START)]
    pages = [page("response", far), page("response", [answer(2, START)])]

    first = [table.num_rows for _, table in checkpoint_batches("responses", iter(pages))]
    later = [table.num_rows for _, table in checkpoint_batches("responses", iter(pages[1:]))]

    assert first[0] == 2 and later[0] == 1
