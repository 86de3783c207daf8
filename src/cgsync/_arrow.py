"""Pages of API records to Arrow tables: flattened, pivoted, typed, column by column.

The main table has one row per record: nested objects flattened with `__`
(`contact__first_name`), segment properties pivoted to `properties__<snake_case(field)>`
string columns, dates parsed in the system's time zone and stored as UTC timestamps, and a
`_cgsync_synced_at` column. Unknown fields become new columns (nested ones flattened, lists as
JSON text). Tags, drivers and questions become child tables keyed by `number_customergauge`
and `position` (0-based, the item's place in the record's list).

Columns are built with one comprehension per column, never one dict per record: this is the
hot path of the sync. Faster still, `read_page` parses a page body straight into Arrow when
every field is one the schemas know; `records_to_arrow` takes those records as they are.
The schemas are the table specs' (`cgsync._tables`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from itertools import chain, repeat
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from cgsync._exceptions import ApiError, ConfigError
from cgsync._tables import (
    CHILD_KEY,
    CHILD_TABLES,
    MAIN_TABLES,
    POSITION,
    REJECTED_VALUES,
    TIMESTAMP,
)
from cgsync.settings import DATE_FORMAT, PRIMARY_KEY, PROPERTY_PREFIX, SYNCED_AT_COLUMN

_LOCAL_TIME = pa.timestamp("s")
PROPERTIES_KEY = "properties"
SEPARATOR = "__"

Columns = dict[str, list[Any] | pa.Array]

# Dates a system may send for "no date": stored as NULL.
_NO_DATE = frozenset({"", "0000-00-00 00:00:00", "0000-00-00"})
_FALLBACK_DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")

SCHEMAS: dict[str, pa.Schema] = {kind: spec.arrow_schema() for kind, spec in MAIN_TABLES.items()}
CHILD_SCHEMAS: dict[str, pa.Schema] = {
    name: spec.arrow_schema() for name, spec in CHILD_TABLES.items()
}
CHILDREN: dict[str, tuple[str, ...]] = {
    kind: tuple(child.name for child in spec.children) for kind, spec in MAIN_TABLES.items()
}

REJECTED_TABLE_SCHEMA = REJECTED_VALUES.arrow_schema()
"""A rejected value in the lake: which resource and when it was read (`cgsync._batches`)."""
REJECTED_SCHEMA = pa.schema(
    [field for field in REJECTED_TABLE_SCHEMA if field.name not in ("resource", SYNCED_AT_COLUMN)]
)
"""A value that could not be read as its column's type: the column holds NULL, this its text."""


def _no_rejections() -> pa.Table:
    return REJECTED_SCHEMA.empty_table()


@dataclass
class ArrowPage:
    """One page as Arrow: the main table, its child tables ("tags", "drivers", "questions") and
    the values it could not read (`REJECTED_SCHEMA`; their columns hold NULL)."""

    table: pa.Table
    children: dict[str, pa.Table] = field(default_factory=dict)
    rejected: pa.Table = field(default_factory=_no_rejections)

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)


Records: TypeAlias = Sequence[dict[str, Any]] | pa.StructArray
"""A page's records: dicts, or the struct array that `read_page` parsed."""


def records_to_arrow(
    records: Records,
    record_kind: str,
    *,
    source_timezone: str,
    synced_at: datetime,
) -> ArrowPage:
    """Convert one page of `record_kind` ("response" or "non_response") records to Arrow.

    Dates in any ISO 8601 form are stored in UTC: a zone or offset in the value wins, others
    are read in `source_timezone` (IANA; ambiguous and nonexistent local times take the
    earliest instant). A value that cannot be read as its column's type is NULL there and
    listed in `rejected`; only a record without a CGID makes the page malformed (ApiError).
    """
    try:
        schema = SCHEMAS[record_kind]
    except KeyError:
        raise ValueError(
            f"unknown record kind {record_kind!r}: use one of {', '.join(SCHEMAS)}"
        ) from None
    check_timezone(source_timezone)
    if synced_at.tzinfo is None:
        raise ValueError("synced_at must be timezone-aware")
    rejected = _Rejected()
    if isinstance(records, pa.StructArray):
        split = _split_struct(records, record_kind)
        if split is None:  # an item the vectorised path does not judge: judged record by record
            return records_to_arrow(
                records.to_pylist(),
                record_kind,
                source_timezone=source_timezone,
                synced_at=synced_at,
            )
    else:
        split = _split_dicts(records, record_kind, schema, rejected)
    columns, properties, child_lists = split
    count = len(records)
    columns[SYNCED_AT_COLUMN] = pa.repeat(pa.scalar(synced_at, type=TIMESTAMP), count)
    if PRIMARY_KEY in columns:
        columns[PRIMARY_KEY] = _array(PRIMARY_KEY, columns[PRIMARY_KEY], pa.int64(), None)
    table = _build_table(columns, schema, count, source_timezone, rejected)
    for name, values in properties.items():
        table = table.append_column(pa.field(name, pa.string()), _array(name, values, pa.string()))
    cgids = table.column(PRIMARY_KEY).combine_chunks()
    if cgids.null_count:
        raise ApiError(f"malformed page: {cgids.null_count} record(s) without {PRIMARY_KEY}")
    rejections = []
    children = {}
    for name in CHILDREN[record_kind]:
        lists = child_lists.get(name, [None] * count)
        if not isinstance(lists, pa.ListArray):
            lists = _readable_lists(name, lists, rejected)
        child_rejected = _Rejected()
        children[name] = _child_table(name, cgids, lists, source_timezone, child_rejected)
        rejections.append(child_rejected.table(children[name].column(PRIMARY_KEY), f"{name}."))
    rejections.insert(0, rejected.table(cgids))
    return ArrowPage(table=table, children=children, rejected=pa.concat_tables(rejections))


class _Rejected:
    """The values of a table being built that its column types could not take."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.columns: list[str] = []
        self.raw: list[str] = []

    def add(self, column: str, row: int, value: Any) -> None:
        self.rows.append(row)
        self.columns.append(column)
        self.raw.append(_text(value))

    def table(self, cgids: pa.Array | pa.ChunkedArray, prefix: str = "") -> pa.Table:
        """The rejections with the CGID of their rows, their columns named `prefix + column`."""
        if not self.rows:
            return _no_rejections()
        return pa.Table.from_arrays(
            [
                pa.array(cgids.take(pa.array(self.rows, pa.int64())), pa.int64()),
                pa.array([prefix + column for column in self.columns], pa.string()),
                pa.array(self.raw, pa.string()),
            ],
            schema=REJECTED_SCHEMA,
        )


_Split = tuple[Columns, Columns, dict[str, list[Any] | pa.ListArray]]
"""A page taken apart: its columns, its pivoted properties and its child lists."""


def _split_dicts(
    records: Sequence[dict[str, Any]], record_kind: str, schema: pa.Schema, rejected: _Rejected
) -> _Split:
    columns: Columns = {}
    child_lists: dict[str, list[Any] | pa.ListArray] = {}
    properties: Columns = {}
    for key in sorted(set().union(*records)):
        values = [record.get(key) for record in records]
        if key == PROPERTIES_KEY:
            properties = _pivot_properties(values, rejected)
        elif key in CHILDREN[record_kind]:
            child_lists[key] = values
        else:
            _flatten(key if key in _names(schema) else snake_case(key), values, schema, columns)
    return columns, properties, child_lists


def _split_struct(records: pa.StructArray, record_kind: str) -> _Split | None:
    """The split of records that `read_page` parsed; None if an item is null (a bad page)."""
    columns: Columns = {}
    child_lists: dict[str, list[Any] | pa.ListArray] = {}
    properties: Columns = {}
    for field_, values in zip(records.type, records.flatten()):
        if field_.name == PROPERTIES_KEY:
            pivoted = _pivot_property_lists(values)
            if pivoted is None:
                return None
            properties = pivoted
        elif field_.name in CHILDREN[record_kind]:
            if values.flatten().null_count and pa.types.is_struct(values.type.value_type):
                return None
            child_lists[field_.name] = values
        elif pa.types.is_struct(field_.type):
            names = (f"{field_.name}{SEPARATOR}{key}" for key in field_.type.names)
            columns.update(zip(names, values.flatten()))
        else:
            columns[field_.name] = values
    return columns, properties, child_lists


def _pivot_property_lists(lists: pa.ListArray) -> Columns | None:
    """`_pivot_properties` in Arrow; None if an item or a field name is null (a bad page)."""
    items = lists.flatten()
    if items.null_count:
        return None
    fields, references = items.flatten()
    if fields.null_count:
        return None
    rows = pc.list_parent_indices(lists).to_numpy()
    columns: Columns = {}
    for field_name in sorted(pc.unique(fields).to_pylist()):
        chosen = pc.equal(fields, field_name)
        positions = np.full(len(lists), -1, dtype=np.int64)
        # A field twice in one record: the last one wins, as in `_pivot_properties`.
        positions[rows[chosen.to_numpy(zero_copy_only=False)]] = np.arange(pc.sum(chosen).as_py())
        column = references.filter(chosen).take(pa.array(positions, mask=positions < 0))
        name = PROPERTY_PREFIX + snake_case(field_name)
        if name in columns:  # two fields with one snake_case name: the first non-null wins
            column = pc.coalesce(columns[name], column)
        columns[name] = column
    return columns


def read_page(body: bytes, record_kind: str) -> tuple[pa.StructArray, Any] | None:
    """A page body `{"data": [...], "cursor": {"next": ...}}` parsed straight into Arrow.

    Returns its records and `cursor.next`, or None when the body holds a field, a type or an
    envelope the record kind's schema does not know: parse it as Python objects then (that path
    adds new columns, coerces drifting types and names malformed values).
    """
    page_schema = _json_page_schema(record_kind)
    try:
        table = pa_json.read_json(
            io.BytesIO(body),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(body) + 1),
            parse_options=pa_json.ParseOptions(
                explicit_schema=page_schema, unexpected_field_behavior="infer"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != 1 or table.schema.field("data") != page_schema.field("data"):
        return None
    if "cursor" not in table.column_names or table["cursor"].null_count:
        return None
    envelope = table["cursor"][0]
    if not pa.types.is_struct(envelope.type) or "next" not in envelope.type.names:
        return None
    data = table["data"].combine_chunks()
    if data.null_count:
        return None
    records = data.flatten()
    if records.null_count:  # a null record: a malformed page for the client to judge
        return None
    return records, envelope["next"].as_py()


@cache
def _json_page_schema(record_kind: str) -> pa.Schema:
    return pa.schema([pa.field("data", pa.list_(_json_record_type(record_kind)))])


def _json_record_type(record_kind: str) -> pa.StructType:
    """A record as the API sends it: `a__b` columns nested in `a`, dates as text, the lists."""
    fields: dict[str, pa.DataType | list[pa.Field]] = {}
    for column in SCHEMAS[record_kind]:
        if column.name == SYNCED_AT_COLUMN:
            continue
        type_ = pa.string() if column.type == TIMESTAMP else column.type
        parent, _, key = column.name.partition(SEPARATOR)
        if key:
            nested = fields.setdefault(parent, [])
            assert isinstance(nested, list)
            nested.append(pa.field(key, type_))
        else:
            fields[parent] = type_
    fields[PROPERTIES_KEY] = pa.list_(
        pa.struct([("field", pa.string()), ("reference", pa.string())])
    )
    for child in CHILDREN[record_kind]:
        item_type = _child_item_type(CHILD_SCHEMAS[child], [])
        assert item_type is not None
        fields[child] = pa.list_(item_type)
    return pa.struct(
        [
            pa.field(name, pa.struct(type_) if isinstance(type_, list) else type_)
            for name, type_ in fields.items()
        ]
    )


def check_timezone(name: str) -> str:
    """Return `name` if it is an IANA time zone, else raise ConfigError."""
    if not _is_timezone(name):
        raise ConfigError(
            f"unknown time zone {name!r} for --source-timezone: use an IANA name "
            "such as UTC or Europe/Amsterdam"
        )
    return name


@lru_cache(maxsize=64)
def _is_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_NON_ALPHANUMERIC = re.compile(r"[^a-zA-Z0-9]+")
_CAMEL_BREAK_1 = re.compile(r"([^_])([A-Z][a-z]+)")
_CAMEL_BREAK_2 = re.compile(r"([a-z0-9])([A-Z])")
_REDUCE_ALPHABET = str.maketrans("+*@|", "xxal")


@lru_cache(maxsize=4096)
def snake_case(name: str) -> str:
    """A field name as a column name that dlt's snake_case naming convention keeps unchanged.

    Like dlt, but punctuation at either end is dropped instead of becoming `x`:
    "Account Manager (EU)" -> "account_manager_eu", "Key Contact" -> "key_contact".
    """
    words = _NON_ALPHANUMERIC.sub("_", name.translate(_REDUCE_ALPHABET))
    words = _CAMEL_BREAK_2.sub(r"\1_\2", _CAMEL_BREAK_1.sub(r"\1_\2", words)).lower()
    identifier = "_".join(word for word in words.split("_") if word)
    if not identifier:
        return "unnamed"
    return f"_{identifier}" if identifier[0].isdigit() else identifier


def _flatten(name: str, values: list[Any], schema: pa.Schema, out: Columns) -> None:
    """Add `values` to `out` as column `name`, or as `name__key` columns if they are objects."""
    if name in _names(schema):
        out[name] = values
        return
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if kinds != {dict}:
        if kinds & {dict, list}:
            out[name] = [None if value is None else _json_text(value) for value in values]
        elif kinds:
            out[name] = values
        return  # all null: no type to give it yet; the column appears when a value does
    keys = set().union(*filter(None, values))
    struct_type = _struct_type(schema, name, keys)
    if struct_type is not None:
        try:
            nested = pa.array(values, type=struct_type).flatten()
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # a value of another type: coerced (or refused) key by key below
        else:
            out.update(zip((f"{name}{SEPARATOR}{key}" for key in struct_type.names), nested))
            return
    for key in sorted(keys, key=str):
        nested_values = [value.get(key) if value else None for value in values]
        _flatten(f"{name}{SEPARATOR}{snake_case(str(key))}", nested_values, schema, out)


def _struct_type(schema: pa.Schema, name: str, keys: set[str]) -> pa.StructType | None:
    """The Arrow type of objects `name` whose keys are all known scalar columns `name__key`."""
    known = _names(schema)
    columns = [f"{name}{SEPARATOR}{key}" for key in keys]
    if not all(column in known for column in columns):
        return None
    return pa.struct([(key, schema.field(column).type) for key, column in zip(keys, columns)])


def _names(schema: pa.Schema) -> frozenset[str]:
    """The column names of one of this module's schemas (hashing a pa.Schema is slow)."""
    return _SCHEMA_NAMES[id(schema)]


_SCHEMA_NAMES = {
    id(schema): frozenset(schema.names) for schema in (*SCHEMAS.values(), *CHILD_SCHEMAS.values())
}


def _pivot_properties(values: list[Any], rejected: _Rejected) -> Columns:
    """`[{"field": f, "reference": r}, ...]` per record -> one column per field. A record's
    properties in another shape are rejected whole."""
    count = len(values)
    by_field: dict[Any, list[Any]] = {}
    for row, properties in enumerate(values):
        if not properties:
            continue
        if not _is_property_list(properties):
            rejected.add(PROPERTIES_KEY, row, properties)
            continue
        for item in properties:
            column = by_field.setdefault(item["field"], [None] * count)
            column[row] = item.get("reference")
    columns: Columns = {}
    for field_name in sorted(by_field, key=str):
        name = PROPERTY_PREFIX + snake_case(str(field_name))
        column = by_field[field_name]
        if name in columns:  # two fields with one snake_case name: the first non-null wins
            column = [a if a is not None else b for a, b in zip(columns[name], column)]
        columns[name] = column
    return columns


def _is_property_list(properties: Any) -> bool:
    return isinstance(properties, list) and all(
        isinstance(item, dict) and item.get("field") is not None for item in properties
    )


def _readable_lists(name: str, lists: list[Any], rejected: _Rejected) -> list[Any]:
    """A child list per record; one that is no list, or (drivers, questions) holds an item that
    is no object, is rejected whole and read as no list. Tags of any kind are kept as text."""
    objects = "value" not in _names(CHILD_SCHEMAS[name])
    readable = []
    for row, items in enumerate(lists):
        if items is not None and not (
            isinstance(items, list) and (not objects or all(isinstance(i, dict) for i in items))
        ):
            rejected.add(name, row, items)
            items = None
        readable.append(items)
    return readable


def _child_table(
    name: str,
    cgids: pa.Array,
    lists: list[Any] | pa.ListArray,
    source_timezone: str,
    rejected: _Rejected,
) -> pa.Table:
    """Rows of one child list (`tags`, `drivers`, `questions`) with the parent key and position."""
    schema = CHILD_SCHEMAS[name]
    if isinstance(lists, pa.ListArray):
        return _child_table_from_lists(lists, cgids, schema)
    items = list(chain.from_iterable(filter(None, lists)))
    item_type = _child_item_type(schema, items)
    if item_type is not None:
        try:
            array = pa.array(lists, type=pa.list_(item_type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # a value of another type: coerced (or refused) by the general path below
        else:
            return _child_table_from_lists(array, cgids, schema)
    lengths = [len(items_of_one) if items_of_one else 0 for items_of_one in lists]
    columns: Columns = {
        PRIMARY_KEY: list(chain.from_iterable(map(repeat, cgids.to_pylist(), lengths))),
        POSITION: list(chain.from_iterable(map(range, lengths))),
    }
    if "value" in _names(schema):  # a list of scalars (tags)
        columns["value"] = items
    else:
        for key in sorted(set().union(*items), key=str):
            values = [item.get(key) for item in items]
            _flatten(snake_case(str(key)), values, schema, columns)
    return _build_table(columns, schema, len(items), source_timezone, rejected)


def _child_item_type(schema: pa.Schema, items: list[Any]) -> pa.DataType | None:
    """The Arrow type of a child list's items if they hold only known fields, else None."""
    item_fields = [field for field in schema if field.name not in CHILD_KEY]
    if [field.name for field in item_fields] == ["value"]:
        return item_fields[0].type
    if set(map(type, items)) - {dict} or not set().union(*items) <= {f.name for f in item_fields}:
        return None
    return pa.struct(item_fields)


def _child_table_from_lists(array: pa.ListArray, cgids: pa.Array, schema: pa.Schema) -> pa.Table:
    parents = pc.list_parent_indices(array)
    offsets = array.offsets.to_numpy()
    starts = offsets[parents.to_numpy()] - offsets[0]  # a slice's offsets need not start at 0
    positions = np.arange(len(parents), dtype=np.int64) - starts
    items = array.flatten()
    values = items.flatten() if pa.types.is_struct(items.type) else [items]
    return pa.Table.from_arrays([cgids.take(parents), pa.array(positions), *values], schema=schema)


def _build_table(
    columns: Columns, schema: pa.Schema, count: int, source_timezone: str, rejected: _Rejected
) -> pa.Table:
    """Known columns in schema order with their types (absent ones all null), then the rest."""
    arrays: list[pa.Array] = []
    fields: list[pa.Field] = []
    for known in schema:
        values = columns.get(known.name)
        if values is None:
            arrays.append(pa.nulls(count, known.type))
        elif known.type == TIMESTAMP:
            arrays.append(_timestamps(known.name, values, source_timezone, rejected))
        else:
            arrays.append(_array(known.name, values, known.type, rejected))
        fields.append(known)
    for name in sorted(columns.keys() - _names(schema)):
        array = _array(name, columns[name], None)
        arrays.append(array)
        fields.append(pa.field(name, array.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _array(
    name: str,
    values: list[Any] | pa.Array,
    type_: pa.DataType | None,
    rejected: _Rejected | None = None,
) -> pa.Array:
    """Values as an Arrow array of `type_` (None: inferred), coercing only when the fast path
    fails. A value that cannot be coerced is NULL and added to `rejected` (without one, and for
    the CGID, it makes the page malformed: ApiError)."""
    if isinstance(values, pa.Array):
        if type_ is None or values.type == type_:
            return values
        try:
            return values.cast(type_)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = values.to_pylist()
    try:
        return pa.array(values, type=type_, from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    if type_ is None or pa.types.is_string(type_):
        return pa.array([None if value is None else _text(value) for value in values], pa.string())
    coerced = []
    for row, value in enumerate(values):
        try:
            coerced.append(_coerce(value, type_))
        except ValueError:
            if rejected is None:
                raise ApiError(
                    f"malformed page: {name} has the value {value!r}, not {type_}"
                ) from None
            rejected.add(name, row, value)
            coerced.append(None)
    return pa.array(coerced, type_)


def _coerce(value: Any, type_: pa.DataType) -> Any:
    """`value` as a Python value of `type_`, or ValueError."""
    if value is None:
        return None
    if pa.types.is_integer(type_):
        if type(value) is int:
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    if pa.types.is_boolean(type_) and value in (0, 1, "0", "1", "true", "false"):  # True == 1
        return value in (1, "1", "true")
    raise ValueError(value)


def _timestamps(
    name: str, values: list[Any] | pa.Array, source_timezone: str, rejected: _Rejected
) -> pa.Array:
    """Date strings -> UTC timestamps; "no date" markers -> null; others -> null, rejected."""
    if isinstance(values, pa.Array) and pa.types.is_timestamp(values.type):
        return values.cast(TIMESTAMP)
    text = _array(name, values, pa.string())
    try:
        local = text.cast(_LOCAL_TIME)  # Arrow's ISO 8601 parser: quick, and strict
    except pa.ArrowInvalid:
        return _parse_leniently(name, text, source_timezone, rejected)
    return _local_to_utc(local, source_timezone)


def _local_to_utc(local: pa.Array, source_timezone: str) -> pa.Array:
    if source_timezone != "UTC":
        local = pc.assume_timezone(
            local, timezone=source_timezone, ambiguous="earliest", nonexistent="earliest"
        )
    return local.cast(TIMESTAMP)


def _parse_leniently(
    name: str, text: pa.Array, source_timezone: str, rejected: _Rejected
) -> pa.Array:
    """Dates in the usual formats at Arrow's speed, then any other ISO 8601 form one by one
    (fractions, `Z`, offsets: a value's own zone wins); "no date" markers become null."""
    formats = (DATE_FORMAT, *_FALLBACK_DATE_FORMATS)
    local = pc.coalesce(
        *(pc.strptime(text, format=form, unit="s", error_is_null=True) for form in formats)
    )
    instants = _local_to_utc(local, source_timezone)
    unparsed = pc.and_(pc.is_null(local), pc.is_valid(text)).to_numpy(zero_copy_only=False)
    if not unparsed.any():
        return instants
    values = instants.to_pylist()
    zone = ZoneInfo(source_timezone)
    for row in np.flatnonzero(unparsed):
        raw = text[row].as_py()
        if raw.strip() in _NO_DATE:
            continue
        instant = _iso_instant(raw, zone)
        if instant is None:
            rejected.add(name, int(row), raw)
        values[row] = instant
    return pa.array(values, TIMESTAMP)


def _iso_instant(text: str, zone: ZoneInfo) -> datetime | None:
    """An ISO 8601 date or date-time as a UTC instant (None: not one)."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _json_text(value)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()
