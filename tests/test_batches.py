"""batches: a checkpoint's pages as batches of tables, each record once per page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cgsync._arrow import ArrowPage, records_to_arrow
from cgsync._batches import batches
from tests.test_source import START, answer

SYNCED_AT = datetime(2026, 1, 2, tzinfo=UTC)


def page(kind: str, records: list[dict[str, Any]]) -> ArrowPage:
    return records_to_arrow(records, kind, source_timezone="UTC", synced_at=SYNCED_AT)


def tables(pages: list[ArrowPage]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, table in batches("responses", pages):
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
