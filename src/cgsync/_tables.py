"""The lake's tables, each specified once: its columns (name, type, nullability) and its keys.

Everything else is derived from these specs: the Arrow schemas pages are built in
(`cgsync._arrow`, and from them the JSON read schema), the dlt column hints and keys of the
source and of the run history (`cgsync.source`, `cgsync._runs`), which declare the columns up
front so that a table's types are right even when a page holds only nulls. Columns are listed
in the lake's order: dlt creates a table with the columns of its first Arrow table, in their
order. The main tables also take columns no spec names, after the declared ones: the pivoted
segment properties (`settings.PROPERTY_PREFIX`) and fields the API adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.compute as pc

from cgsync.settings import PRIMARY_KEY, REJECTED_VALUES_TABLE, RUNS_TABLE, SYNCED_AT_COLUMN

if TYPE_CHECKING:
    from dlt.common.schema.typing import TColumnSchema

DataType = Literal["bigint", "text", "bool", "timestamp", "double", "json"]
"""A column's type, by its dlt name; a `timestamp` is UTC (time-zone aware), in microseconds."""

TIMESTAMP = pa.timestamp("us", tz="UTC")
ARROW_TYPES: dict[DataType, pa.DataType] = {
    "bigint": pa.int64(),
    "text": pa.string(),
    "bool": pa.bool_(),
    "timestamp": TIMESTAMP,
    "double": pa.float64(),
}
"""Each type's Arrow type; `json` has none (only the run history, loaded from Python rows)."""

POSITION = "position"
"""A child row's 0-based place in its record's list."""
CHILD_KEY = (PRIMARY_KEY, POSITION)
CHILD_ROW_KEY = "_cgsync_row_key"
"""A child row's key in one column, `<CGID>/<position>`, on Iceberg only: pyiceberg's upsert
matches a two-column key with an OR of one AND per row; one column is an IN list (a
20,000-invitation first load: 62 s with two columns, 15 s with one)."""
_ROW_KEY_SEPARATOR = "/"


@dataclass(frozen=True)
class Column:
    """One column of a lake table."""

    name: str
    data_type: DataType
    nullable: bool = True

    def arrow_field(self) -> pa.Field:
        return pa.field(self.name, ARROW_TYPES[self.data_type], nullable=self.nullable)

    def dlt_hint(self) -> TColumnSchema:
        """The column's dlt hint, a new dict each time (dlt writes into its hints)."""
        hint: TColumnSchema = {"data_type": self.data_type, "nullable": self.nullable}
        if self.data_type == "timestamp":
            hint["timezone"] = True
        return hint


@dataclass(frozen=True)
class TableSpec:
    """One lake table: its declared columns in the lake's order, and the roles of its keys.

    A main table is named by its record kind (`response`: the tables `responses` and
    `responses_v6`); a child table by its suffix (`tags`: `responses__tags`, ...).
    """

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    merge_key: tuple[str, ...] = ()
    """On SQL destinations, the key whose rows a merge replaces all of: a child table's parent."""
    row_key: Column | None = None
    """The primary key in one column, where the table format wants one (Iceberg)."""
    children: tuple[TableSpec, ...] = ()
    """A main table's child tables, whose rows name their record by its CGID."""

    def __post_init__(self) -> None:
        names = self.names
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: a column is declared twice")
        unknown = set(self.primary_key + self.merge_key) - set(names)
        if unknown:
            raise ValueError(f"table {self.name}: its keys name no column: {sorted(unknown)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def table_name(self, resource: str) -> str:
        """A child table's name under the main table of `resource`."""
        return f"{resource}__{self.name}"

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([column.arrow_field() for column in self.columns])

    def dlt_columns(self, *, row_key: bool = False) -> dict[str, TColumnSchema]:
        """The columns' dlt hints (new dicts), with the `row_key` column last if asked."""
        columns = [*self.columns, self.row_key] if row_key and self.row_key else self.columns
        return {column.name: column.dlt_hint() for column in columns}


_CGID = Column(PRIMARY_KEY, "bigint", nullable=False)
_SYNCED_AT = Column(SYNCED_AT_COLUMN, "timestamp", nullable=False)
"""When the row's page was read."""

_SHARED_COLUMNS = (
    _CGID,
    Column("number_customer", "text"),
    Column("number_order", "text"),
    Column("email", "text"),
    Column("phone", "text"),
    Column("language", "text"),
    Column("contact__first_name", "text"),
    Column("contact__last_name", "text"),
    Column("account__name", "text"),
    Column("account__number", "text"),
    Column("date_creation", "timestamp"),
    Column("date_order", "timestamp"),
    Column("date_email_sent", "timestamp"),
)
"""The columns responses and non-responses share, first in both tables."""


def _main_table(
    record_kind: str, own: tuple[Column, ...], children: tuple[TableSpec, ...] = ()
) -> TableSpec:
    """A main table: the shared columns, the record kind's own, then `_cgsync_synced_at`."""
    columns = (*_SHARED_COLUMNS, *own, _SYNCED_AT)
    return TableSpec(record_kind, columns, primary_key=(PRIMARY_KEY,), children=children)


_CHILD_KEY_COLUMNS = (_CGID, Column(POSITION, "bigint", nullable=False))
_ROW_KEY = Column(CHILD_ROW_KEY, "text", nullable=False)


def _child_table(name: str, *items: Column) -> TableSpec:
    """A child table: its parent's CGID and the item's position, then the item's fields."""
    return TableSpec(
        name,
        (*_CHILD_KEY_COLUMNS, *items),
        primary_key=CHILD_KEY,
        merge_key=(PRIMARY_KEY,),
        row_key=_ROW_KEY,
    )


TAGS = _child_table("tags", Column("value", "text"))
DRIVERS = _child_table(
    "drivers", Column("id", "bigint"), Column("name", "text"), Column("sentiment", "text")
)
QUESTIONS = _child_table(
    "questions", Column("id", "bigint"), Column("question", "text"), Column("answer", "text")
)
RESPONSES = _main_table(
    "response",
    (
        Column("date_survey_response", "timestamp"),
        Column("nps", "bigint"),
        Column("comment", "text"),
        Column("follow_up__requested", "bool"),
        Column("follow_up__details", "text"),
    ),
    children=(TAGS, DRIVERS, QUESTIONS),
)
NON_RESPONSES = _main_table(
    "non_response",
    (
        Column("status", "text"),
        Column("date_sent", "timestamp"),
        Column("date_opened", "timestamp"),
        Column("date_clicked", "timestamp"),
        Column("link", "text"),
    ),
)
REJECTED_VALUES = TableSpec(
    REJECTED_VALUES_TABLE,
    (
        Column("resource", "text", nullable=False),
        Column(PRIMARY_KEY, "bigint"),
        Column("column", "text", nullable=False),
        Column("raw_value", "text"),
        _SYNCED_AT,
    ),
)
"""A value the sync could not read (its column holds NULL): which resource, CGID, column, its
text and when it was read. Appended, without a key."""
RUNS = TableSpec(
    RUNS_TABLE,
    (
        Column("run_id", "text", nullable=False),
        Column("pipeline_name", "text"),
        Column("started_at", "timestamp", nullable=False),
        Column("finished_at", "timestamp"),
        Column("seconds", "double"),
        Column("outcome", "text", nullable=False),
        Column("error", "text"),
        Column("checkpoints", "bigint"),
        Column("resources", "json"),  # {resource: {pages, records, refresh_..., cursor}}
        Column("api_calls", "bigint"),
        Column("token_calls", "bigint"),
        Column("retries", "json"),
        Column("full_refresh", "bool"),
        Column("reconcile", "bool"),
        Column("parallel", "bigint"),
        Column("row_counts", "json"),
        Column("open_non_responses", "bigint"),
        Column("rejected_values", "bigint"),
        Column("api_host", "text"),
        Column("client_id", "text"),
        Column("machine", "text"),
        Column("cgsync_version", "text"),
        Column("dlt_version", "text"),
    ),
)
"""The run history: a row per sync, appended (`cgsync._runs`)."""

MAIN_TABLES: dict[str, TableSpec] = {spec.name: spec for spec in (RESPONSES, NON_RESPONSES)}
"""The main tables by record kind."""
CHILD_TABLES: dict[str, TableSpec] = {spec.name: spec for spec in RESPONSES.children}
"""The child tables by suffix."""


def is_child_table(name: str) -> bool:
    """Whether `name` is a child table (`responses__tags`, ...), keyed by CGID and position."""
    return name.rpartition("__")[2] in CHILD_TABLES


def row_key(cgid: int, position: int) -> str:
    """One child row's `CHILD_ROW_KEY`, as `with_row_key` writes it."""
    return f"{cgid}{_ROW_KEY_SEPARATOR}{position}"


def with_row_key(table: pa.Table) -> pa.Table:
    """A child table with its `CHILD_ROW_KEY` column last: `<CGID>/<position>`."""
    key = pc.binary_join_element_wise(
        pc.cast(table[PRIMARY_KEY], pa.string()),
        pc.cast(table[POSITION], pa.string()),
        _ROW_KEY_SEPARATOR,
    )
    return table.append_column(_ROW_KEY.arrow_field(), key)
