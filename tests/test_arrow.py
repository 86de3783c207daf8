"""records_to_arrow: names, types, time zones, pivots, child tables, schema evolution, bad data.

Every conversion here also goes the fast way when Arrow's JSON reader takes the page
(`read_page`), and both ways must give the same tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pytest
from dlt.common.normalizers.naming.snake_case import NamingConvention
from hypothesis import given, settings
from hypothesis import strategies as st
from sync_lake import emulator_client

from cgsync import ApiError, ConfigError
from cgsync._arrow import ArrowPage, read_page, records_to_arrow, snake_case
from cgsync._endpoints import ENDPOINTS
from cgsync._pages import walk_pages

SYNCED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TIMESTAMP = "timestamp[us, tz=UTC]"

RESPONSE: dict[str, Any] = {
    "contact": {"first_name": "John", "last_name": "Doe"},
    "account": {"name": "ACME", "number": "123"},
    "number_customergauge": 3414,
    "number_customer": "123",
    "number_order": "321",
    "email": "example@customergauge.com",
    "phone": None,
    "nps": 10,
    "comment": None,
    "date_creation": "2022-03-30 12:34:56",
    "date_order": "2022-03-30 12:34:56",
    "date_email_sent": "2022-03-30 12:34:56",
    "date_survey_response": "2022-03-31 08:00:00",
    "language": "EN",
    "follow_up": {"requested": False, "details": None},
    "tags": ["Onboarding", "Pricing"],
    "properties": [
        {"field": "Country", "reference": "NL"},
        {"field": "Key Contact", "reference": None},
        {"field": "Account Manager (EU)", "reference": "Zoë"},
    ],
    "drivers": [{"id": 3, "name": "Price", "sentiment": "negative"}],
    "questions": [
        {"id": 7, "question": "Why?", "answer": None},
        {"id": 8, "question": "Again?", "answer": "Yes"},
    ],
}
NON_RESPONSE: dict[str, Any] = {
    "status": "survey-clicked",
    "contact": {"first_name": "John", "last_name": "Doe"},
    "account": {"name": "ACME", "number": "123"},
    "number_customergauge": 3415,
    "number_customer": "123",
    "number_order": None,
    "email": "example@customergauge.com",
    "phone": "1234567890",
    "date_creation": "2022-03-30 12:34:56",
    "date_order": "2022-03-30 12:34:56",
    "date_sent": "2022-03-30 12:34:56",
    "date_opened": None,
    "date_clicked": None,
    "language": "EN",
    "link": "https://survey.eu.customergauge.com/r/Qjzs386dvk-r_15",
    "date_email_sent": "2023-05-30 23:49:21",
}


def convert(records: list[dict[str, Any]], kind: str = "response", timezone: str = "UTC") -> Any:
    """The records converted from dicts; from Arrow too, if `read_page` takes them (the same)."""
    from_dicts = records_to_arrow(records, kind, source_timezone=timezone, synced_at=SYNCED_AT)
    parsed = read_page(body(records), kind)
    if parsed is not None:
        from_arrow = records_to_arrow(
            parsed[0], kind, source_timezone=timezone, synced_at=SYNCED_AT
        )
        assert_same(from_arrow, from_dicts)
    return from_dicts


def body(records: list[dict[str, Any]], next_cursor: Any = 2) -> bytes:
    return orjson.dumps({"data": records, "cursor": {"next": next_cursor}})


def assert_same(page: ArrowPage, expected: ArrowPage) -> None:
    assert page.table.schema == expected.table.schema
    assert page.table.to_pylist() == expected.table.to_pylist()
    assert page.children.keys() == expected.children.keys()
    for name, child in page.children.items():
        assert child.schema == expected.children[name].schema, name
        assert child.to_pylist() == expected.children[name].to_pylist(), name
    assert page.rejected.to_pylist() == expected.rejected.to_pylist()


def types(table: pa.Table) -> dict[str, str]:
    return {field.name: str(field.type) for field in table.schema}


SHARED_COLUMNS = {
    "number_customergauge": "int64",
    "number_customer": "string",
    "number_order": "string",
    "email": "string",
    "phone": "string",
    "language": "string",
    "contact__first_name": "string",
    "contact__last_name": "string",
    "account__name": "string",
    "account__number": "string",
    "date_creation": TIMESTAMP,
    "date_order": TIMESTAMP,
    "date_email_sent": TIMESTAMP,
}


def test_response_columns_one_by_one() -> None:
    converted = convert([RESPONSE])

    assert types(converted.table) == SHARED_COLUMNS | {
        "date_survey_response": TIMESTAMP,
        "nps": "int64",
        "comment": "string",
        "follow_up__requested": "bool",
        "follow_up__details": "string",
        "_cgsync_synced_at": TIMESTAMP,
        "properties__account_manager_eu": "string",
        "properties__country": "string",
        "properties__key_contact": "string",
    }
    [row] = converted.table.to_pylist()
    assert row["date_survey_response"] == datetime(2022, 3, 31, 8, tzinfo=UTC)
    assert (row["nps"], row["comment"], row["phone"]) == (10, None, None)
    assert (row["follow_up__requested"], row["follow_up__details"]) == (False, None)
    assert row["properties__account_manager_eu"] == "Zoë" and row["properties__key_contact"] is None
    assert row["_cgsync_synced_at"] == SYNCED_AT


def test_non_response_columns_one_by_one() -> None:
    table = convert([NON_RESPONSE], "non_response").table

    assert types(table) == SHARED_COLUMNS | {
        "status": "string",
        "date_sent": TIMESTAMP,
        "date_opened": TIMESTAMP,
        "date_clicked": TIMESTAMP,
        "link": "string",
        "_cgsync_synced_at": TIMESTAMP,
    }
    [row] = table.to_pylist()
    assert (row["status"], row["number_order"], row["date_opened"]) == (
        "survey-clicked",
        None,
        None,
    )


def test_child_tables_carry_the_parent_key_and_position() -> None:
    other = RESPONSE | {"number_customergauge": 9, "tags": [], "drivers": None, "questions": []}
    children = convert([RESPONSE, other]).children

    assert children["tags"].to_pylist() == [
        {"number_customergauge": 3414, "position": 0, "value": "Onboarding"},
        {"number_customergauge": 3414, "position": 1, "value": "Pricing"},
    ]
    assert children["drivers"].to_pylist() == [
        {
            "number_customergauge": 3414,
            "position": 0,
            "id": 3,
            "name": "Price",
            "sentiment": "negative",
        },
    ]
    assert [(q["position"], q["id"], q["answer"]) for q in children["questions"].to_pylist()] == [
        (0, 7, None),
        (1, 8, "Yes"),
    ]
    assert types(children["questions"]) == {
        "number_customergauge": "int64",
        "position": "int64",
        "id": "int64",
        "question": "string",
        "answer": "string",
    }


def test_tags_of_another_shape_are_kept_as_text() -> None:
    tags = convert([RESPONSE | {"tags": [7, "Pricing", {"id": 2}]}]).children["tags"]
    assert tags.column("value").to_pylist() == ["7", "Pricing", '{"id":2}']
    assert tags.column("position").to_pylist() == [0, 1, 2]


def test_an_all_null_page_keeps_the_known_types() -> None:
    converted = convert([{"number_customergauge": 1}, {"number_customergauge": 2, "nps": None}])

    full = types(convert([RESPONSE]).table)
    assert types(converted.table) == {
        name: kind for name, kind in full.items() if not name.startswith("properties__")
    }
    assert {name: table.num_rows for name, table in converted.children.items()} == {
        "tags": 0,
        "drivers": 0,
        "questions": 0,
    }
    assert types(converted.children["drivers"])["id"] == "int64"


def test_an_empty_page_is_an_empty_table() -> None:
    converted = convert([], "non_response")
    assert converted.table.num_rows == 0
    assert types(converted.table) == types(convert([NON_RESPONSE], "non_response").table)


@pytest.mark.parametrize(
    ("local", "utc"),
    [
        ("2024-03-31 01:30:00", datetime(2024, 3, 31, 0, 30)),  # CET, before the gap
        ("2024-03-31 03:30:00", datetime(2024, 3, 31, 1, 30)),  # CEST, after the gap
        ("2024-03-31 02:30:00", datetime(2024, 3, 31, 0, 59, 59)),  # in the gap: just before it
        ("2024-10-27 02:30:00", datetime(2024, 10, 27, 0, 30)),  # twice: the earliest
        ("2024-10-27 03:30:00", datetime(2024, 10, 27, 2, 30)),  # CET again
        ("2024-07-01 12:00:00", datetime(2024, 7, 1, 10, 0)),
    ],
)
def test_dates_move_from_the_system_zone_to_utc_across_dst(local: str, utc: datetime) -> None:
    table = convert(
        [{"number_customergauge": 1, "date_creation": local}], timezone="Europe/Amsterdam"
    ).table
    assert table.column("date_creation").to_pylist() == [utc.replace(tzinfo=UTC)]


@pytest.mark.parametrize("no_date", ["", "0000-00-00 00:00:00", None])
def test_no_date_is_null(no_date: str | None) -> None:
    table = convert([{"number_customergauge": 1, "date_order": no_date}]).table
    assert table.column("date_order").to_pylist() == [None]


def test_date_only_and_iso_forms_are_read() -> None:
    records = [
        {"number_customergauge": 1, "date_order": "2024-05-06"},
        {"number_customergauge": 2, "date_order": "2024-05-06T07:08:09"},
    ]
    assert convert(records).table.column("date_order").to_pylist() == [
        datetime(2024, 5, 6, tzinfo=UTC),
        datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("field", "value", "column", "raw"),
    [
        ("date_creation", "yesterday", "date_creation", "yesterday"),
        ("date_creation", "2024-13-45 25:00:00", "date_creation", "2024-13-45 25:00:00"),
        ("nps", "ten", "nps", "ten"),
        ("follow_up", {"requested": "maybe"}, "follow_up__requested", "maybe"),
        (
            "properties",
            [{"field": None, "reference": "NL"}],
            "properties",
            '[{"field":null,"reference":"NL"}]',
        ),
        ("properties", "Country=NL", "properties", "Country=NL"),
        ("drivers", [3, 4], "drivers", "[3,4]"),
        ("tags", "Pricing", "tags", "Pricing"),
        ("tags", {"value": "Pricing"}, "tags", '{"value":"Pricing"}'),
    ],
)
def test_a_value_that_cannot_be_read_is_null_and_kept_as_rejected_text(
    field: str, value: Any, column: str, raw: str
) -> None:
    page = convert([RESPONSE, RESPONSE | {"number_customergauge": 99, field: value}])

    assert page.rejected.to_pylist() == [
        {"number_customergauge": 99, "column": column, "raw_value": raw}
    ]
    assert page.table.column("number_customergauge").to_pylist() == [
        RESPONSE["number_customergauge"],
        99,
    ]
    [odd] = [row for row in page.table.to_pylist() if row["number_customergauge"] == 99]
    if column in odd:
        assert odd[column] is None
    if field in page.children:
        assert 99 not in page.children[field].column("number_customergauge").to_pylist()


def test_a_child_value_that_cannot_be_read_is_rejected_with_its_parents_cgid() -> None:
    record = RESPONSE | {"drivers": [{"id": "three", "name": "Price", "sentiment": "negative"}]}

    page = convert([record])

    assert page.rejected.to_pylist() == [
        {
            "number_customergauge": RESPONSE["number_customergauge"],
            "column": "drivers.id",
            "raw_value": "three",
        }
    ]
    assert page.children["drivers"].to_pylist()[0]["id"] is None
    assert page.children["drivers"].to_pylist()[0]["name"] == "Price"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01 13:00:00", datetime(2024, 1, 1, 12, 0, tzinfo=UTC)),
        ("2024-01-01T13:00:00", datetime(2024, 1, 1, 12, 0, tzinfo=UTC)),
        ("2024-01-01T13:00:00+01:00", datetime(2024, 1, 1, 12, 0, tzinfo=UTC)),
        ("2024-01-01T13:00:00+03:00", datetime(2024, 1, 1, 10, 0, tzinfo=UTC)),
        ("2024-01-01T13:00:00Z", datetime(2024, 1, 1, 13, 0, tzinfo=UTC)),
        ("2024-01-01T13:00:00.250Z", datetime(2024, 1, 1, 13, 0, 0, 250_000, tzinfo=UTC)),
        ("2024-01-01 13:00:00.5", datetime(2024, 1, 1, 12, 0, 0, 500_000, tzinfo=UTC)),
        ("2024-01-01", datetime(2023, 12, 31, 23, 0, tzinfo=UTC)),
        ("", None),
        ("0000-00-00 00:00:00", None),
        ("0000-00-00", None),
    ],
)
def test_every_iso_form_of_a_date_is_the_right_instant_and_its_own_zone_wins(
    text: str, expected: datetime | None
) -> None:
    records = [RESPONSE | {"date_creation": text}, RESPONSE | {"number_customergauge": 2}]

    page = convert(records, timezone="Europe/Amsterdam")  # from dicts and from the page body

    assert page.table.column("date_creation")[0].as_py() == expected
    assert page.rejected.num_rows == 0


def test_a_record_without_a_cgid_is_malformed() -> None:
    with pytest.raises(ApiError, match="1 record\\(s\\) without number_customergauge"):
        convert([RESPONSE, {"nps": 3}])


def test_harmless_type_drift_is_coerced() -> None:
    record = RESPONSE | {
        "nps": "7",
        "number_customer": 123,
        "number_customergauge": "3414",
        "follow_up": {"requested": 1, "details": None},
    }
    [row] = convert([record]).table.to_pylist()
    assert (row["nps"], row["number_customer"], row["number_customergauge"]) == (7, "123", 3414)
    assert row["follow_up__requested"] is True


def test_new_fields_become_new_columns() -> None:
    record = RESPONSE | {
        "channel": "email",
        "survey": {"name": "Relationship", "owner": {"Full Name": "Ana"}},
        "labels": ["a", {"b": 1}],
        "always_null": None,
        "contact": {"first_name": "John", "last_name": "Doe", "middleName": "Q"},
        "properties": RESPONSE["properties"] + [{"field": "Region Code", "reference": "W"}],
        "drivers": [{"id": 3, "name": "Price", "sentiment": "negative", "weight": 0.5}],
    }
    converted = convert([record, RESPONSE | {"number_customergauge": 1}])
    rows = converted.table.to_pylist()

    assert rows[0]["channel"] == "email" and rows[1]["channel"] is None
    assert rows[0]["survey__name"] == "Relationship"
    assert rows[0]["survey__owner__full_name"] == "Ana"
    assert rows[0]["labels"] == '["a",{"b":1}]'
    assert rows[0]["contact__middle_name"] == "Q" and rows[0]["contact__first_name"] == "John"
    assert rows[0]["properties__region_code"] == "W" and rows[1]["properties__region_code"] is None
    assert "always_null" not in converted.table.column_names
    assert converted.children["drivers"].column("weight").to_pylist() == [0.5, None]


def test_nulls_never_become_text() -> None:
    sparse: dict[str, Any] = {key: None for key in RESPONSE} | {"number_customergauge": 5}
    sparse["properties"] = [{"field": "Country", "reference": None}]
    table = convert([sparse, RESPONSE]).table
    for column in table.columns:
        assert "None" not in [str(value) for value in column.to_pylist() if value is not None]
    assert table.slice(0, 1).to_pylist()[0]["properties__country"] is None


@pytest.mark.parametrize(
    ("field", "column"),
    [
        ("Account Manager (EU)", "account_manager_eu"),
        ("Key Contact", "key_contact"),
        ("Country", "country"),
        ("Segment A", "segment_a"),
        ("NPS-Score", "nps_score"),
        ("2nd Line", "_2nd_line"),
        ("AccountManager", "account_manager"),
        ("(EU)", "eu"),
    ],
)
def test_segment_fields_become_snake_case_columns(field: str, column: str) -> None:
    assert snake_case(field) == column


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_dlt_keeps_every_property_column_name_as_it_is(field: str) -> None:
    column = "properties__" + snake_case(field)
    assert NamingConvention().normalize_path(column) == column


def test_an_unknown_time_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        convert([RESPONSE], timezone="Mars/Olympus")


def test_emulator_pages_convert_to_the_truth(emulator: Any) -> None:
    zone = "Europe/Amsterdam"
    emu = emulator(records=3_000, seed=9, timezone=zone, history_days=400)
    endpoint = ENDPOINTS["non_responses"]
    with emulator_client(emu) as client:
        pages = walk_pages(
            client, endpoint, cursor=None, per_page=1000, params={"with[]": ["properties"]}
        )
        tables = [convert(page.records, "non_response", zone).table for page in pages]
    table = pa.concat_tables(tables, promote_options="default")
    truth = emu.truth()

    sent = dict(
        zip(table.column("number_customergauge").to_pylist(), table.column("date_sent").to_pylist())
    )
    assert set(sent) == set(truth.non_responses)
    wrong = {cgid for cgid, when in sent.items() if when != truth.date_sent[cgid]}
    assert wrong == {cgid for cgid in wrong if _is_ambiguous(truth.date_sent[cgid], zone)}
    assert any(name.startswith("properties__") for name in table.column_names)


def _is_ambiguous(instant: datetime, zone: str) -> bool:
    local = instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    return (
        local.replace(tzinfo=ZoneInfo(zone), fold=0).utcoffset()
        != local.replace(tzinfo=ZoneInfo(zone), fold=1).utcoffset()
    )


LOCAL_TIMES = st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2025, 12, 31))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"number_customergauge": st.integers(1, 2**40)},
            optional={
                "nps": st.none() | st.integers(0, 10),
                "comment": st.none() | st.text(max_size=5),
                "number_customer": st.none() | st.text(max_size=5) | st.integers(0, 99),
                "date_creation": st.none()
                | LOCAL_TIMES.map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
                "contact": st.none()
                | st.fixed_dictionaries(
                    {},
                    optional={
                        "first_name": st.none() | st.text(max_size=5),
                        "last_name": st.text(max_size=5),
                    },
                ),
                "properties": st.lists(
                    st.fixed_dictionaries(
                        {
                            "field": st.sampled_from(
                                ["Country", "Key Contact", "Account Manager (EU)"]
                            ),
                            "reference": st.none() | st.text(max_size=4),
                        }
                    ),
                    max_size=3,
                ),
            },
        ),
        max_size=20,
    )
)
def test_the_columns_match_a_record_by_record_flattening(records: list[dict[str, Any]]) -> None:
    converted = convert(records, timezone="UTC").table.to_pylist()

    assert len(converted) == len(records)
    for row, record in zip(converted, records):
        assert {k: v for k, v in row.items() if k in expected_row(record)} == expected_row(record)
        assert all(
            row[k] is None for k in row.keys() - expected_row(record) - {"_cgsync_synced_at"}
        )


def expected_row(record: dict[str, Any]) -> dict[str, Any]:
    """The obvious, slow flattening the fast one must agree with."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key == "properties":
            for item in value:
                row["properties__" + snake_case(item["field"])] = item["reference"]
        elif key == "contact":
            row.update((f"{key}__{k}", v) for k, v in (value or {}).items())
        elif key == "number_customer" and isinstance(value, int):
            row[key] = str(value)
        elif key.startswith("date_") and value is not None:
            row[key] = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        else:
            row[key] = value
    return row


@pytest.mark.parametrize(
    ("kind", "record"), [("response", RESPONSE), ("non_response", NON_RESPONSE)]
)
def test_arrow_reads_a_page_of_known_fields(kind: str, record: dict[str, Any]) -> None:
    sparse = {"number_customergauge": 1, "contact": None, "properties": None}
    parsed = read_page(body([record, sparse], next_cursor="eyJuIjoxfQ"), kind)

    assert parsed is not None
    records, next_cursor = parsed
    assert (len(records), next_cursor) == (2, "eyJuIjoxfQ")
    assert_same(
        records_to_arrow(records, kind, source_timezone="UTC", synced_at=SYNCED_AT),
        convert([record, sparse], kind),
    )


@pytest.mark.parametrize(
    "page",
    [
        body([RESPONSE | {"channel": "email"}]),  # a new field: a new column
        body([RESPONSE | {"contact": {"first_name": "A", "middle_name": "B"}}]),
        body([RESPONSE | {"drivers": [{"id": 3, "weight": 0.5}]}]),
        body([RESPONSE | {"nps": "7"}]),  # type drift: coerced
        body([RESPONSE | {"number_customer": 123}]),
        body([RESPONSE, None]),  # malformed: the client says so
        orjson.dumps({"data": [RESPONSE], "next_cursor": None}),  # Laravel's envelope (v6)
        orjson.dumps({"data": [RESPONSE]}),
        orjson.dumps([RESPONSE]),
        b"<html>",
    ],
)
def test_arrow_leaves_what_the_schema_does_not_know_to_the_python_path(page: bytes) -> None:
    assert read_page(page, "response") is None


@pytest.mark.parametrize(
    ("field", "value", "column"),
    [
        ("properties", [{"reference": "NL"}], "properties"),
        ("properties", [None], "properties"),
        ("drivers", [None], "drivers"),
        ("date_creation", "yesterday", "date_creation"),
    ],
)
def test_a_bad_page_read_by_arrow_is_judged_as_one_read_as_dicts(
    field: str, value: Any, column: str
) -> None:
    records = [RESPONSE | {field: value}]
    parsed = read_page(body(records), "response")

    assert parsed is not None
    from_arrow = records_to_arrow(parsed[0], "response", source_timezone="UTC", synced_at=SYNCED_AT)
    assert from_arrow.rejected.column("column").to_pylist() == [column]
    if field != "properties":  # Arrow read the missing field name as null
        from_dicts = records_to_arrow(
            records, "response", source_timezone="UTC", synced_at=SYNCED_AT
        )
        assert_same(from_arrow, from_dicts)


def test_two_fields_of_one_column_keep_the_first_value_either_way() -> None:
    properties = [
        {"field": "Key-Contact", "reference": None},
        {"field": "Key Contact", "reference": "Yes"},
        {"field": "Country", "reference": "NL"},
        {"field": "Country", "reference": "DE"},
    ]
    [row] = convert([RESPONSE | {"properties": properties}]).table.to_pylist()
    assert (row["properties__key_contact"], row["properties__country"]) == ("Yes", "DE")


def test_synced_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        records_to_arrow(
            [RESPONSE],
            "response",
            source_timezone="UTC",
            synced_at=datetime(2026, 1, 1),
        )
