"""The table specs (`cgsync._tables`) and everything derived from them agree: the Arrow tables a
page becomes, the JSON read schema, the dlt hints and keys of the source and of the run
history, the columns the views read, and the tables a sync creates in DuckDB.

The lake's public columns themselves are pinned literally (`LAKE_COLUMNS`, and their types in
test_pipeline.py and test_arrow.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pyarrow as pa
import pytest
from dlt.common.libs.pyarrow import py_arrow_to_table_schema_columns
from dlt.common.schema.typing import TTableSchema, TTableSchemaColumns
from dlt.extract.items import TableNameMeta
from sync_lake import LakeReader, make_lake, sync_options

from cgsync import customergauge_source, run_sync
from cgsync._arrow import PROPERTIES_KEY, _json_record_type, records_to_arrow
from cgsync._batches import batches
from cgsync._client import ApiClient, Page
from cgsync._endpoints import ENDPOINTS
from cgsync._runs import run_history_source
from cgsync._tables import (
    CHILD_KEY,
    CHILD_ROW_KEY,
    CHILD_TABLES,
    MAIN_TABLES,
    REJECTED_VALUES,
    RUNS,
    Column,
    TableSpec,
    is_child_table,
    with_row_key,
)
from cgsync._views import NON_RESPONSES, open_non_responses_sql, survey_funnel_sql
from cgsync.emulator import Emulator
from cgsync.settings import PRIMARY_KEY, PROPERTY_PREFIX, SYNCED_AT_COLUMN
from cgsync.source import ONE_RUN

RESOURCES = tuple(ENDPOINTS)
ARROW_SPECS = (*MAIN_TABLES.values(), *CHILD_TABLES.values(), REJECTED_VALUES)
"""The tables loaded from Arrow (the run history is loaded from Python rows)."""
DUCKDB_TYPES = {
    "bigint": "BIGINT",
    "text": "VARCHAR",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "double": "DOUBLE",
    "json": "JSON",
}
UNREADABLE_DATE = "31/02/2024 25:61"
_SHARED = (
    "number_customergauge",
    "number_customer",
    "number_order",
    "email",
    "phone",
    "language",
    "contact__first_name",
    "contact__last_name",
    "account__name",
    "account__number",
    "date_creation",
    "date_order",
    "date_email_sent",
)
LAKE_COLUMNS = {
    "response": (
        *_SHARED,
        "date_survey_response",
        "nps",
        "comment",
        "follow_up__requested",
        "follow_up__details",
        "_cgsync_synced_at",
    ),
    "non_response": (
        *_SHARED,
        "status",
        "date_sent",
        "date_opened",
        "date_clicked",
        "link",
        "_cgsync_synced_at",
    ),
    "tags": ("number_customergauge", "position", "value"),
    "drivers": ("number_customergauge", "position", "id", "name", "sentiment"),
    "questions": ("number_customergauge", "position", "id", "question", "answer"),
    "_cgsync_rejected_values": (
        "resource",
        "number_customergauge",
        "column",
        "raw_value",
        "_cgsync_synced_at",
    ),
    "_cgsync_runs": (
        "run_id",
        "pipeline_name",
        "started_at",
        "finished_at",
        "seconds",
        "outcome",
        "error",
        "checkpoints",
        "resources",
        "api_calls",
        "token_calls",
        "retries",
        "full_refresh",
        "reconcile",
        "parallel",
        "row_counts",
        "open_non_responses",
        "rejected_values",
        "api_host",
        "client_id",
        "machine",
        "cgsync_version",
        "dlt_version",
    ),
}
"""The declared columns of each table in the lake's order, as existing lakes have them: the
specs must keep them (their types are pinned in test_pipeline.py, docs/sync.md lists them)."""

Declared = list[tuple[str, str, bool]]
"""(name, dlt data type, nullable) per column."""


def declared(columns: tuple[Column, ...]) -> Declared:
    return [(column.name, column.data_type, column.nullable) for column in columns]


def hinted(columns: TTableSchemaColumns) -> Declared:
    """dlt columns as (name, data type, nullable); a timestamp must be time-zone aware."""
    for name, column in columns.items():
        if column.get("data_type") == "timestamp":
            assert column.get("timezone", True), f"{name} is a naive timestamp"
            assert column.get("precision", 6) == 6, f"{name} is not in microseconds"
        assert column.get("precision") is None or column["data_type"] == "timestamp", name
    return [(name, c["data_type"], c["nullable"]) for name, c in columns.items()]


def in_dlt_terms(schema: pa.Schema) -> Declared:
    """An Arrow schema as dlt reads it into a table's columns."""
    return hinted(py_arrow_to_table_schema_columns(schema))


def spec_of(table: str) -> TableSpec:
    """The spec of one of the source's tables."""
    if table == REJECTED_VALUES.name:
        return REJECTED_VALUES
    if is_child_table(table):
        return CHILD_TABLES[table.rpartition("__")[2]]
    return MAIN_TABLES[ENDPOINTS[table].record_kind]


def keys(schema: TTableSchema, role: str) -> tuple[str, ...]:
    return tuple(name for name, column in schema["columns"].items() if column.get(role))


def test_the_specs_keep_the_lakes_columns_in_their_order() -> None:
    specs = (*ARROW_SPECS, RUNS)
    assert {spec.name: spec.names for spec in specs} == LAKE_COLUMNS


def test_every_spec_declares_arrow_types_dlt_reads_as_its_types() -> None:
    for spec in ARROW_SPECS:
        assert in_dlt_terms(spec.arrow_schema()) == declared(spec.columns), spec.name
    for spec in (*ARROW_SPECS, RUNS):
        assert hinted(spec.dlt_columns()) == declared(spec.columns), spec.name


def test_a_page_becomes_arrow_tables_of_the_specs_columns() -> None:
    synced_at = datetime(2026, 1, 2, tzinfo=UTC)
    items: dict[str, list[Any]] = {
        "tags": ["Pricing"],
        "drivers": [{"id": 1, "name": "Price", "sentiment": "negative"}],
        "questions": [{"id": 2, "question": "Why?", "answer": "Because"}],
    }
    for kind, spec in MAIN_TABLES.items():
        record: dict[str, Any] = {PRIMARY_KEY: 7, "date_creation": UNREADABLE_DATE}
        record |= {child.name: items[child.name] for child in spec.children}
        page = records_to_arrow([record], kind, source_timezone="UTC", synced_at=synced_at)

        assert in_dlt_terms(page.table.schema) == declared(spec.columns), kind
        assert list(page.children) == [child.name for child in spec.children]
        for child in spec.children:
            table = page.children[child.name]
            assert in_dlt_terms(table.schema) == declared(child.columns), child.name
            assert child.row_key is not None
            assert in_dlt_terms(with_row_key(table).schema) == declared(
                (*child.columns, child.row_key)
            )
        tables = dict(batches("resource", [page]))
        assert in_dlt_terms(tables[REJECTED_VALUES.name].schema) == declared(
            REJECTED_VALUES.columns
        )


def test_the_json_read_schema_nests_the_specs_columns_and_reads_dates_as_text() -> None:
    for kind, spec in MAIN_TABLES.items():
        record_type = _json_record_type(kind)
        children = [child.name for child in spec.children]
        leaves = [
            pa.field(f"{field.name}__{nested.name}", nested.type)
            for field in record_type
            if pa.types.is_struct(field.type)
            for nested in field.type
        ] + [
            field
            for field in record_type
            if not pa.types.is_struct(field.type) and field.name not in (PROPERTIES_KEY, *children)
        ]
        expected = [
            (name, "text" if data_type == "timestamp" else data_type, True)
            for name, data_type, _ in declared(spec.columns)
            if name != SYNCED_AT_COLUMN
        ]
        assert sorted(in_dlt_terms(pa.schema(leaves))) == sorted(expected), kind
        assert [field.name for field in record_type][-len(children) - 1 :] == [
            PROPERTIES_KEY,
            *children,
        ]
        for child in spec.children:
            item = record_type.field(child.name).type.value_type
            fields = item.fields if pa.types.is_struct(item) else [pa.field("value", item)]
            items = [column[:2] for column in in_dlt_terms(pa.schema(fields))]
            assert items == [column[:2] for column in declared(child.columns)[len(CHILD_KEY) :]]


def source_tables(table_format: str | None) -> Iterator[TTableSchema]:
    """Every table schema the source's hints give, for every resource."""
    client = cast(ApiClient, SimpleNamespace(api_url="https://api.test.invalid", client_id="specs"))
    options = replace(ONE_RUN, endpoints=RESOURCES)
    source = customergauge_source(options, client=client, table_format=table_format)
    for resource in source.resources.values():
        for table in resource._hints_variants:
            yield resource.compute_table_schema(meta=TableNameMeta(table))


@pytest.mark.parametrize("table_format", [None, "delta", "iceberg"])
def test_the_sources_hints_and_keys_are_the_specs(table_format: str | None) -> None:
    tables = list(source_tables(table_format))
    row_keys = table_format == "iceberg"

    assert sorted({table["name"] for table in tables}) == sorted(
        {
            *RESOURCES,
            *(
                child.table_name(resource)
                for resource in RESOURCES
                for child in MAIN_TABLES[ENDPOINTS[resource].record_kind].children
            ),
            REJECTED_VALUES.name,
        }
    )
    for table in tables:
        spec = spec_of(table["name"])
        columns = spec.columns
        primary_key, merge_key = spec.primary_key, () if table_format else spec.merge_key
        if row_keys and spec.row_key:
            columns, primary_key = (*columns, spec.row_key), (spec.row_key.name,)
        assert hinted(table["columns"]) == declared(columns), table["name"]
        assert keys(table, "primary_key") == primary_key, table["name"]
        assert keys(table, "merge_key") == merge_key, table["name"]
    child_keys = {keys(table, "primary_key") for table in tables if is_child_table(table["name"])}
    assert child_keys == {(CHILD_ROW_KEY,) if row_keys else CHILD_KEY}
    [rejected] = {
        table["write_disposition"] for table in tables if table["name"] == REJECTED_VALUES.name
    }
    assert rejected == "append"


def test_the_run_history_is_loaded_with_the_runs_spec() -> None:
    [resource] = run_history_source([], None).resources.values()
    table = resource.compute_table_schema()

    assert table["name"] == RUNS.name
    assert hinted(table["columns"]) == declared(RUNS.columns)
    assert keys(table, "primary_key") == RUNS.primary_key == ()


def test_the_views_read_only_columns_of_the_specs() -> None:
    segment = f"{PROPERTY_PREFIX}country"
    responses, non_responses = MAIN_TABLES["response"], MAIN_TABLES["non_response"]
    columns = {
        "responses": (*responses.names, segment),
        NON_RESPONSES: (*non_responses.names, segment),
    }
    quote: Callable[[str], str] = '"{}"'.format
    sql = survey_funnel_sql(quote, quote, "responses", columns)
    sql += open_non_responses_sql(quote, quote, "responses")

    def read(alias: str) -> set[str]:
        return set(re.findall(rf'\b{alias}\."([^"]+)"', sql))

    assert read("r") and read("r") <= set(columns["responses"])
    assert read("n") and read("n") <= set(columns[NON_RESPONSES])


@pytest.mark.parametrize(
    ("columns", "primary_key", "error"),
    [
        ((Column("a", "text"), Column("a", "bigint")), (), "declared twice"),
        ((Column("a", "text"),), ("b",), "name no column"),
    ],
)
def test_a_spec_refuses_a_column_twice_and_a_key_of_no_column(
    columns: tuple[Column, ...], primary_key: tuple[str, ...], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        TableSpec("t", columns, primary_key=primary_key)


def test_a_synced_duckdb_lake_has_the_specs_columns_first_in_their_order(
    emulator: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = emulator(records=300)
    fetch = ApiClient.get_page

    def an_unreadable_date(self: ApiClient, endpoint: Any, **kwargs: Any) -> Page:
        page = fetch(self, endpoint, **kwargs)
        if page.records:
            page.records[0]["date_creation"] = UNREADABLE_DATE
        return page

    monkeypatch.setattr(ApiClient, "get_page", an_unreadable_date)
    with make_lake("duckdb", tmp_path) as lake:
        run_sync(sync_options(emu, lake, endpoints=RESOURCES))
        rows = LakeReader(lake).rows(
            "SELECT table_name, column_name, data_type, is_nullable = 'YES'"
            " FROM information_schema.columns WHERE table_schema = 'customergauge'"
            " ORDER BY table_name, ordinal_position"
        )
    lake_columns: dict[str, list[tuple[str, str, bool]]] = {}
    for table, *column in rows:
        lake_columns.setdefault(table, []).append(tuple(column))  # type: ignore[arg-type]

    specs: Mapping[str, TableSpec] = {
        **{
            name: spec_of(name)
            for name in lake_columns
            if name in ENDPOINTS or is_child_table(name)
        },
        REJECTED_VALUES.name: REJECTED_VALUES,
        RUNS.name: RUNS,
    }
    assert len(specs) == len(RESOURCES) + 2 * len(CHILD_TABLES) + 2, sorted(lake_columns)
    for name, spec in specs.items():
        expected = [(n, DUCKDB_TYPES[t], null) for n, t, null in declared(spec.columns)]
        columns = lake_columns[name]
        assert columns[: len(expected)] == expected, name
        rest = [column for column, *_ in columns[len(expected) :]]
        if name in ENDPOINTS:
            assert rest and all(column.startswith(PROPERTY_PREFIX) for column in rest), name
        elif name == RUNS.name:
            assert rest == ["_dlt_load_id", "_dlt_id"]
        else:
            assert rest == [], name
