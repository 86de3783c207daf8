"""The v6 cursor is Laravel's: the vendor's own example decodes and encodes back."""

from __future__ import annotations

import pytest

from cgsync.emulator._cursors import V6Cursor

VENDOR_EXAMPLE = "eyJudW1iZXJfY3VzdG9tZXJnYXVnZSI6MTMwODQsIl9wb2ludHNUb05leHRJdGVtcyI6dHJ1ZX0"


def test_the_vendor_example_round_trips() -> None:
    cursor = V6Cursor.decode(VENDOR_EXAMPLE)
    assert cursor == V6Cursor(cgid=13084, points_to_next=True)
    assert cursor.encode() == VENDOR_EXAMPLE


def test_a_cursor_to_previous_items_round_trips() -> None:
    cursor = V6Cursor(cgid=7, points_to_next=False)
    assert V6Cursor.decode(cursor.encode()) == cursor
    assert "=" not in cursor.encode()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64!",
        "bnVsbA",  # null
        "WzEsMl0",  # [1,2]
        "eyJudW1iZXJfY3VzdG9tZXJnYXVnZSI6MX0",  # no direction
        "eyJudW1iZXJfY3VzdG9tZXJnYXVnZSI6dHJ1ZSwiX3BvaW50c1RvTmV4dEl0ZW1zIjp0cnVlfQ",  # bool CGID
        "eyJudW1iZXJfY3VzdG9tZXJnYXVnZSI6LTEsIl9wb2ludHNUb05leHRJdGVtcyI6dHJ1ZX0",  # CGID -1
    ],
)
def test_anything_else_is_not_a_cursor(text: str) -> None:
    with pytest.raises(ValueError, match="not a cursor"):
        V6Cursor.decode(text)
