"""The CustomerGauge dlt source: resources `responses`, `non_responses` and `responses_v6`.

Use it in any dlt pipeline::

    import dlt
    from cgsync import customergauge_source

    pipeline = dlt.pipeline("cgsync", destination="duckdb", dataset_name="customergauge")
    pipeline.run(customergauge_source())

Credentials come from the arguments or from dlt's config and secrets
(`sources.customergauge.client_id`, `sources.customergauge.client_secret`). Every resource
keeps its cursors in its dlt resource state, which dlt commits with the data of the same load
package, so a run that dies never loses data and the next run resumes. See docs/sync.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, Literal
from zoneinfo import ZoneInfo

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.data_types import TDataType
from dlt.common.schema.typing import TColumnSchema, TWriteDispositionConfig
from dlt.extract.resource import DltResource

from cgsync._arrow import ArrowPage, check_timezone, records_to_arrow
from cgsync._client import ApiClient, Page, resolve_urls
from cgsync._endpoints import Endpoint, parse_resources
from cgsync._exceptions import ConfigError
from cgsync._pages import walk_pages
from cgsync.settings import (
    CGID_FILTER_PARAM,
    DEFAULT_REFRESH_WINDOW,
    DEFAULT_RESOURCES,
    DEFAULT_SOURCE_TIMEZONE,
    DEFAULT_V6_LOOKBACK,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    EXPANSION_PARAM,
    OUTBOUND_FILTER_PARAM,
    PERIOD_END_PARAM,
    PERIOD_FIELD_PARAM,
    PERIOD_START_PARAM,
    PRIMARY_KEY,
    SYNCED_AT_COLUMN,
)

__all__ = ["PageCallback", "customergauge_source"]

SOURCE_NAME = "customergauge"
UNFILTERED = "all"
"""The walk key of an unfiltered walk (each filter combination has its own cursors)."""

PageCallback = Callable[[str, int], None]
"""Called after each page with the resource name and the page's number of records."""

TableFormat = Literal["delta", "iceberg"]

BATCH_ROWS = 10_000
"""Rows per dlt item: pages are joined up to this size within a checkpoint."""

_PERIOD_DAY = "%Y-%m-%d"
_CHILD_KEY = [PRIMARY_KEY, "position"]
_REFRESH_FIELD = "date_sent"


def _column(data_type: TDataType, *, nullable: bool = True) -> TColumnSchema:
    column: TColumnSchema = {"data_type": data_type, "nullable": nullable}
    if data_type == "timestamp":
        column["timezone"] = True
    return column


_TIMESTAMP = partial(_column, "timestamp")
_TEXT = partial(_column, "text")
_BIGINT = partial(_column, "bigint")
_BOOL = partial(_column, "bool")

_COMMON_COLUMNS: dict[str, TColumnSchema] = {
    PRIMARY_KEY: _BIGINT(nullable=False),
    "contact__first_name": _TEXT(),
    "contact__last_name": _TEXT(),
    "account__name": _TEXT(),
    "account__number": _TEXT(),
    "number_customer": _TEXT(),
    "number_order": _TEXT(),
    "email": _TEXT(),
    "phone": _TEXT(),
    "date_creation": _TIMESTAMP(),
    "date_order": _TIMESTAMP(),
    "date_email_sent": _TIMESTAMP(),
    "language": _TEXT(),
    SYNCED_AT_COLUMN: _TIMESTAMP(nullable=False),
}
# Declared up front so that a table's types are right even when a page holds only nulls.
COLUMNS: dict[str, dict[str, TColumnSchema]] = {
    "response": {
        **_COMMON_COLUMNS,
        "nps": _BIGINT(),
        "comment": _TEXT(),
        "date_survey_response": _TIMESTAMP(),
        "follow_up__requested": _BOOL(),
        "follow_up__details": _TEXT(),
    },
    "non_response": {
        **_COMMON_COLUMNS,
        "status": _TEXT(),
        "date_sent": _TIMESTAMP(),
        "date_opened": _TIMESTAMP(),
        "date_clicked": _TIMESTAMP(),
        "link": _TEXT(),
    },
}
_CHILD_KEY_COLUMNS: dict[str, TColumnSchema] = {
    PRIMARY_KEY: _BIGINT(nullable=False),
    "position": _BIGINT(nullable=False),
}
CHILD_COLUMNS: dict[str, dict[str, TColumnSchema]] = {
    "tags": {"value": _TEXT()},
    "drivers": {"id": _BIGINT(), "name": _TEXT(), "sentiment": _TEXT()},
    "questions": {"id": _BIGINT(), "question": _TEXT(), "answer": _TEXT()},
}


@dataclass(frozen=True)
class Filters:
    """What narrows a walk: a period on one date field, one CGID, one outbound filter."""

    period_field: str | None = None
    since: date | None = None
    until: date | None = None
    cgid: int | None = None
    outbound_filter: str | None = None

    @property
    def key(self) -> str:
        """Names the walk in the resource state: each filter combination has its own cursor."""
        parts = []
        if self.period_field:
            parts.append(f"{self.period_field}:{self.since}..{self.until}")
        if self.cgid is not None:
            parts.append(f"cgid:{self.cgid}")
        if self.outbound_filter:
            parts.append(f"outbound:{self.outbound_filter}")
        return ",".join(parts) or UNFILTERED

    def params(self) -> dict[str, str]:
        params = {}
        if self.period_field:
            params.update(_period_params(self.period_field, self.since, self.until))
        if self.cgid is not None:
            params[CGID_FILTER_PARAM] = str(self.cgid)
        if self.outbound_filter:
            params[OUTBOUND_FILTER_PARAM] = self.outbound_filter
        return params


@dataclass(frozen=True)
class _Walker:
    """Everything the resources of one source share."""

    open_client: Callable[[], contextlib.AbstractContextManager[ApiClient]]
    per_page: dict[str, int]
    expansions: dict[str, tuple[str, ...]]
    filters: Filters
    source_timezone: ZoneInfo
    refresh_window: timedelta
    v6_lookback: timedelta
    checkpoint_pages: int | None
    full_refresh: bool
    on_page: PageCallback | None

    def params(self, endpoint: Endpoint, filters: Filters | None = None) -> dict[str, Any]:
        params: dict[str, Any] = (filters or self.filters).params()
        if self.expansions[endpoint.resource]:
            params[EXPANSION_PARAM] = list(self.expansions[endpoint.resource])
        return params

    def pages(
        self,
        client: ApiClient,
        budget: _Budget,
        endpoint: Endpoint,
        cursor: Any,
        params: dict[str, Any],
    ) -> Iterator[tuple[Page, ArrowPage]]:
        """Each page from `cursor` to the end of the walk or of the budget, as Arrow too."""
        for page in walk_pages(
            client,
            endpoint,
            cursor=cursor,
            per_page=self.per_page[endpoint.resource],
            params=params,
            max_pages=budget.left,
        ):
            budget.spend()
            arrow = records_to_arrow(
                page.records,
                endpoint.record_kind,
                source_timezone=self.source_timezone.key,
                synced_at=datetime.now(UTC),
            )
            if self.on_page is not None:
                self.on_page(endpoint.resource, len(page.records))
            yield page, arrow

    def begin(self, resource: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The resource state and this walk's state, starting a new cycle if the last ended.

        A cycle is one sync of the walk: it may take several runs (checkpoints) of the
        pipeline; `complete` tells the runner when it has ended.
        """
        state = dlt.current.resource_state(resource)
        if self.full_refresh:
            state.clear()
        walk = state.setdefault("walks", {}).setdefault(self.filters.key, {"cursor": None})
        if walk.get("complete", True):
            walk.update(complete=False, phase="walk", from_scratch=walk["cursor"] is None)
        return state, walk


class _Budget:
    """The pages one checkpoint (one dlt load package) of one resource may still fetch."""

    def __init__(self, pages: int | None) -> None:
        self.left = pages

    @property
    def exhausted(self) -> bool:
        return self.left is not None and self.left <= 0

    def spend(self) -> None:
        if self.left is not None:
            self.left -= 1


def _ends_walk(page: Page) -> bool:
    """An empty `data` ends a v7 walk, a null `next` a v6 one."""
    return not page.records or page.next_cursor is None


@dlt.source(name=SOURCE_NAME, max_table_nesting=0)
def customergauge_source(
    client_id: str | None = dlt.secrets.value,
    client_secret: str | None = dlt.secrets.value,
    region: str | None = None,
    auth_url: str | None = None,
    api_url: str | None = None,
    endpoints: Sequence[str] = DEFAULT_RESOURCES,
    expansions: Sequence[str] | None = None,
    per_page: int | None = None,
    period_field: str | None = None,
    since: date | None = None,
    until: date | None = None,
    cgid: int | None = None,
    outbound_filter: str | None = None,
    source_timezone: str = DEFAULT_SOURCE_TIMEZONE,
    refresh_window: timedelta = DEFAULT_REFRESH_WINDOW,
    v6_lookback: timedelta = DEFAULT_V6_LOOKBACK,
    checkpoint_pages: int | None = None,
    full_refresh: bool = False,
    table_format: TableFormat | None = None,
    client: ApiClient | None = None,
    on_page: PageCallback | None = None,
) -> Iterator[DltResource]:
    """CustomerGauge responses and non-responses, incrementally, from the sync endpoints.

    Args:
        client_id, client_secret: the Connected App's credentials.
        region: `eu`, `us` or `au`; `auth_url` / `api_url` override the hosts.
        endpoints: resource names, from `responses`, `non_responses`, `responses_v6`.
        expansions: `with[]` values, each sent to the endpoints that know it (default: all).
        per_page: page size (default: each endpoint's largest).
        period_field, since, until: a date filter (`period[...]`); `cgid`, `outbound_filter`:
            the CGID and outbound filters. Each filter combination keeps its own cursors.
        source_timezone: the CustomerGauge system's time zone (IANA); dates become UTC.
        refresh_window: re-read non-responses sent this long before the newest one seen, to
            merge their new statuses (`timedelta(0)` turns it off).
        v6_lookback: how far back each periodic `responses_v6` walk starts.
        checkpoint_pages: pages per resource per run (None: walk to the end in one run).
        full_refresh: forget the stored cursors and read everything again.
        table_format: `delta` or `iceberg` on the filesystem destination (merge needs one).
        client: an open ApiClient to share across runs (then credentials are not needed).
        on_page: progress callback, see `PageCallback`.
    """
    chosen = parse_resources(endpoints)
    walker = _Walker(
        open_client=_client_opener(client, client_id, client_secret, region, auth_url, api_url),
        per_page={e.resource: e.check_per_page(per_page or e.page_limit) for e in chosen},
        expansions=_expansions(chosen, expansions),
        filters=walk_filters(chosen, period_field, since, until, cgid, outbound_filter),
        source_timezone=ZoneInfo(check_timezone(source_timezone)),
        refresh_window=_non_negative(refresh_window, "--refresh-window"),
        v6_lookback=_non_negative(v6_lookback, "--v6-lookback"),
        checkpoint_pages=_positive_or_none(checkpoint_pages, "--checkpoint-pages"),
        full_refresh=full_refresh,
        on_page=on_page,
    )
    for endpoint in chosen:
        yield _resource(endpoint, walker, table_format)


def walk_state(source_state: Mapping[str, Any], resource: str, filters_key: str) -> dict[str, Any]:
    """The stored state of one walk of `resource` in a pipeline's source state (or {})."""
    resources = source_state.get("resources", {})
    walk: dict[str, Any] = resources.get(resource, {}).get("walks", {}).get(filters_key, {})
    return walk


def _resource(endpoint: Endpoint, walker: _Walker, table_format: TableFormat | None) -> DltResource:
    # Delta and Iceberg tables merge by upsert on the key; SQL destinations delete and insert,
    # which also lets a re-fetched response replace all its child rows (the merge key).
    disposition: TWriteDispositionConfig = {
        "disposition": "merge",
        "strategy": "upsert" if table_format else "delete-insert",
    }
    walk = _v6_walk if endpoint.version == 6 else _v7_walk
    resource = dlt.resource(
        _batched(endpoint, walk(endpoint, walker))(),
        name=endpoint.resource,
        write_disposition=disposition,
        primary_key=PRIMARY_KEY,
    )
    resource.apply_hints(table_format=table_format)
    # Every table is a variant with its own columns: variants copy the resource's hints, so
    # the main table's columns must not be on the resource itself.
    resource.apply_hints(
        table_name=endpoint.resource,
        columns=deepcopy(COLUMNS[endpoint.record_kind]),  # dlt writes into column hints
        create_table_variant=True,
    )
    if endpoint.record_kind == "response":
        for child, columns in CHILD_COLUMNS.items():
            resource.apply_hints(
                table_name=f"{endpoint.resource}__{child}",
                primary_key=_CHILD_KEY,
                merge_key="" if table_format else PRIMARY_KEY,
                columns=deepcopy({**_CHILD_KEY_COLUMNS, **columns}),
                create_table_variant=True,
            )
    return resource


def _batched(
    endpoint: Endpoint, walk: Callable[[], Iterator[ArrowPage]]
) -> Callable[[], Iterator[Any]]:
    """The walk's pages as dlt items of about BATCH_ROWS rows per table.

    dlt spends about as long on each item as on building a page, whatever its size, so pages
    are joined. That is safe: dlt commits the cursors and the data of a checkpoint together.
    """

    def batches() -> Iterator[Any]:
        pending: dict[str, list[pa.Table]] = {}
        rows = 0
        for arrow in walk():
            tables = {endpoint.resource: arrow.table}
            tables.update(
                (f"{endpoint.resource}__{child}", t) for child, t in arrow.children.items()
            )
            for name, table in tables.items():
                if table.num_rows:
                    pending.setdefault(name, []).append(table)
            rows += arrow.table.num_rows
            if rows >= BATCH_ROWS:
                yield from _joined(pending)
                rows = 0
        yield from _joined(pending)

    return batches


def _joined(pending: dict[str, list[pa.Table]]) -> Iterator[Any]:
    """One item per table of the pending pages (a page may lack a segment column); clears them."""
    for name, tables in pending.items():
        yield dlt.mark.with_table_name(pa.concat_tables(tables, promote_options="default"), name)
    pending.clear()


def _v7_walk(endpoint: Endpoint, walker: _Walker) -> Callable[[], Iterator[ArrowPage]]:
    """A v7 sync walk from the stored cursor; non-responses then re-read the refresh window."""

    def walk() -> Iterator[ArrowPage]:
        state, walk = walker.begin(endpoint.resource)
        refresh_follows = _refresh_wanted(endpoint, walker, walk)
        seen: list[pa.Array] = []
        budget = _Budget(walker.checkpoint_pages)
        with walker.open_client() as client:
            if walk["phase"] == "walk":
                params = walker.params(endpoint)
                for page, arrow in walker.pages(client, budget, endpoint, walk["cursor"], params):
                    if refresh_follows:
                        seen.append(arrow.table[PRIMARY_KEY].combine_chunks())
                    if walker.filters.key == UNFILTERED:
                        _note_newest_sent(state, arrow.table)
                    yield arrow
                    walk["cursor"] = page.resume_cursor
                    if not _ends_walk(page) and budget.exhausted:
                        return
                walk["phase"] = "done"
                if refresh_follows and "newest_date_sent" in state:
                    walk.update(phase="refresh", refresh=_refresh_period(state, walker))
            if walk["phase"] == "refresh" and not budget.exhausted:
                yield from _refresh(endpoint, walker, client, walk, budget, seen)
        if walk["phase"] == "done":
            walk.pop("from_scratch", None)
            walk["complete"] = True

    return walk


def _refresh(
    endpoint: Endpoint,
    walker: _Walker,
    client: ApiClient,
    walk: dict[str, Any],
    budget: _Budget,
    seen: list[pa.Array],
) -> Iterator[ArrowPage]:
    """Re-read the non-responses sent within the refresh window and merge their statuses."""
    refresh = walk["refresh"]
    filters = replace(
        walker.filters,
        period_field=_REFRESH_FIELD,
        since=date.fromisoformat(refresh["start"]),
        until=date.fromisoformat(refresh["end"]),
    )
    # A CGID the walk read into this same load package must not come twice: a Delta merge
    # refuses duplicate keys, and the walk's copy is just as fresh.
    already = pa.concat_arrays(seen) if seen else None
    params = walker.params(endpoint, filters)
    for page, arrow in walker.pages(client, budget, endpoint, refresh.get("cursor"), params):
        yield _without(arrow, already)
        refresh["cursor"] = page.resume_cursor
        if not _ends_walk(page) and budget.exhausted:
            return
    del walk["refresh"]
    walk["phase"] = "done"


def _without(arrow: ArrowPage, cgids: pa.Array | None) -> ArrowPage:
    """The page without the rows of `cgids` (in the main and the child tables)."""
    if cgids is None:
        return arrow

    def keep(table: pa.Table) -> pa.Table:
        return table.filter(pc.invert(pc.is_in(table[PRIMARY_KEY], value_set=cgids)))

    return ArrowPage(
        table=keep(arrow.table),
        children={name: keep(table) for name, table in arrow.children.items()},
    )


def _note_newest_sent(state: dict[str, Any], table: pa.Table) -> None:
    """Remember the newest `date_sent` in the lake: it anchors the refresh window."""
    if _REFRESH_FIELD not in table.column_names or not table.num_rows:
        return
    newest = pc.max(table[_REFRESH_FIELD]).as_py()
    stored = state.get("newest_date_sent")
    if newest is not None and (stored is None or newest > datetime.fromisoformat(stored)):
        state["newest_date_sent"] = newest.isoformat()


def _refresh_wanted(endpoint: Endpoint, walker: _Walker, walk: dict[str, Any]) -> bool:
    return (
        endpoint.record_kind == "non_response"
        and walker.refresh_window > timedelta(0)
        and walker.filters.period_field is None
        # A walk from the very start reads every non-response anyway.
        and not walk.get("from_scratch", False)
    )


def _refresh_period(state: dict[str, Any], walker: _Walker) -> dict[str, str]:
    """The refresh window in the system's own days, anchored on the newest `date_sent` seen."""
    newest = datetime.fromisoformat(state["newest_date_sent"]).astimezone(walker.source_timezone)
    return {
        "start": (newest - walker.refresh_window).strftime(_PERIOD_DAY),
        "end": (newest + timedelta(days=1)).strftime(_PERIOD_DAY),
    }


def _v6_walk(endpoint: Endpoint, walker: _Walker) -> Callable[[], Iterator[ArrowPage]]:
    """A v6 walk (ordered by CGID) from the ladder rung just older than the lookback."""

    def walk() -> Iterator[ArrowPage]:
        _, walk = walker.begin(endpoint.resource)
        ladder: list[list[Any]] = walk.setdefault("ladder", [])
        if walk["phase"] == "walk":
            start = _rung_before(ladder, walker.v6_lookback)
            # Older rungs are never needed again; newer ones are rebuilt by this walk.
            ladder[:] = ladder[start : start + 1] if start >= 0 else []
            walk.update(cursor=ladder[0][0] if ladder else None, phase="walking")
        budget = _Budget(walker.checkpoint_pages)
        with walker.open_client() as client:
            params = walker.params(endpoint)
            for page, arrow in walker.pages(client, budget, endpoint, walk["cursor"], params):
                if page.records:
                    _climb(ladder, page, arrow.table)
                yield arrow
                # On the last page (null `next`) this keeps the cursor that fetched it.
                walk["cursor"] = page.resume_cursor
                if not _ends_walk(page) and budget.exhausted:
                    return
        walk.update(phase="done", complete=True)
        walk.pop("from_scratch", None)

    return walk


def _climb(ladder: list[list[Any]], page: Page, table: pa.Table) -> None:
    """Add a rung: the cursor that fetched `page` and the newest `date_creation` on it."""
    newest = pc.max(table["date_creation"]).as_py()
    rung = [page.cursor, newest.isoformat() if newest else None]
    if ladder and ladder[-1][0] == page.cursor:
        ladder[-1] = rung  # the start rung, read again
    else:
        ladder.append(rung)


def _rung_before(ladder: list[list[Any]], lookback: timedelta) -> int:
    """Index of the last rung whose page is wholly older than newest - lookback; -1: none."""
    dates = [datetime.fromisoformat(newest) if newest else None for _, newest in ladder]
    known = [d for d in dates if d is not None]
    if not known:
        return -1
    threshold = max(known) - lookback
    older = [index for index, d in enumerate(dates) if d is not None and d < threshold]
    return older[-1] if older else -1


def _client_opener(
    client: ApiClient | None,
    client_id: str | None,
    client_secret: str | None,
    region: str | None,
    auth_url: str | None,
    api_url: str | None,
) -> Callable[[], contextlib.AbstractContextManager[ApiClient]]:
    """Shares `client` (left open), or opens a new client per resource walk."""
    if client is not None:
        return lambda: contextlib.nullcontext(client)
    if not client_id or not client_secret:
        raise ConfigError(
            f"missing credentials: set {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} "
            "(or sources.customergauge.client_id/client_secret in .dlt/secrets.toml)"
        )
    token_url, base_url = resolve_urls(region, auth_url=auth_url, api_url=api_url)
    return lambda: ApiClient(
        client_id=client_id,
        client_secret=client_secret,
        auth_url=token_url,
        api_url=base_url,
        region=region,
    )


def walk_filters(
    chosen: Sequence[Endpoint],
    period_field: str | None,
    since: date | None,
    until: date | None,
    cgid: int | None,
    outbound_filter: str | None,
) -> Filters:
    if (since is None) != (until is None):
        raise ConfigError("--since and --until go together: give both (yyyy-mm-dd)")
    if since is not None and until is not None:
        if since > until:
            raise ConfigError(f"--since {since} is after --until {until}")
        period_field = period_field or "date_creation"
    elif period_field is not None:
        raise ConfigError("--period-field needs --since and --until")
    if period_field is not None:
        for endpoint in chosen:
            endpoint.check_period_field(period_field)
    if (period_field or cgid is not None or outbound_filter) and any(
        e.version == 6 for e in chosen
    ):
        raise ConfigError("responses_v6 takes no filters: drop it from --endpoints or the filters")
    return Filters(period_field, since, until, cgid, outbound_filter)


def _expansions(
    chosen: Sequence[Endpoint], expansions: Sequence[str] | None
) -> dict[str, tuple[str, ...]]:
    """Each endpoint's `with[]` values: those of `expansions` it knows (default: all it has)."""
    if expansions is None:
        return {e.resource: e.expansions for e in chosen}
    known = {name for e in chosen for name in e.expansions}
    unknown = [name for name in expansions if name not in known]
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ConfigError(f"--with {','.join(unknown)} is not available here: allowed: {allowed}")
    wanted = tuple(dict.fromkeys(expansions))
    return {e.resource: tuple(n for n in wanted if n in e.expansions) for e in chosen}


def _period_params(field: str, since: date | None, until: date | None) -> dict[str, str]:
    # The API wants all three together.
    return {
        PERIOD_FIELD_PARAM: field,
        PERIOD_START_PARAM: f"{since:{_PERIOD_DAY}}",
        PERIOD_END_PARAM: f"{until:{_PERIOD_DAY}}",
    }


def _non_negative(value: timedelta, flag: str) -> timedelta:
    if value < timedelta(0):
        raise ConfigError(f"{flag} must not be negative")
    return value


def _positive_or_none(value: int | None, flag: str) -> int | None:
    if value is not None and value < 1:
        raise ConfigError(f"{flag} must be at least 1, got {value}")
    return value
