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
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import dlt
from dlt.common.schema.typing import TWriteDispositionConfig
from dlt.extract.resource import DltResource

from cgsync._arrow import ArrowPage, check_timezone
from cgsync._batches import batches
from cgsync._checkpoints import Checkpoint, ResourceState
from cgsync._client import ApiClient, resolve_urls
from cgsync._dlt import MERGE_KEY_ONLY_HINT, STAGING_DEDUPLICATED_HINT, install_merge_key_only
from cgsync._endpoints import Endpoint, parse_resources
from cgsync._exceptions import ApiError, ConfigError
from cgsync._lake import System, TableFormat, check_system
from cgsync._pages import ReadAhead
from cgsync._tables import (
    CHILD_ROW_KEY,
    MAIN_TABLES,
    REJECTED_VALUES,
    is_child_table,
    with_row_key,
)
from cgsync._walks import Filters, PageCallback, Walker, walk_strategy
from cgsync.settings import (
    DEFAULT_REFRESH_WINDOW,
    DEFAULT_RESOURCES,
    DEFAULT_SOURCE_TIMEZONE,
    DEFAULT_V6_LOOKBACK,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
)

__all__ = ["STAGING_DEDUPLICATED_HINT", "PageCallback", "customergauge_source"]

SOURCE_NAME = "customergauge"

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
    checkpoint_seconds: float | None = None,
    full_refresh: bool = False,
    parallel: int = 1,
    table_format: TableFormat | None = None,
    staging_deduplicated: bool = False,
    client: ApiClient | None = None,
    read_ahead: ReadAhead | None = None,
    on_page: PageCallback | None = None,
    on_refresh_page: PageCallback | None = None,
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
        checkpoint_seconds: a run also ends after the page that takes it past this many
            seconds (None: no time limit).
        full_refresh: forget the stored cursors and read everything again.
        parallel: windows of `date_creation` walked side by side in a v7 resource's initial
            load (no stored cursor, or `full_refresh`); 1 walks it in one sequence.
        table_format: `delta` or `iceberg` on the filesystem destination (merge needs one).
        staging_deduplicated: tell the SQL merge that staging holds each key once, so it skips
            its deduplication. True only where a load job is never run twice: see
            `cgsync._dlt.reset_staging_deduplicated`.
        client: an open ApiClient to share across runs (then credentials are not needed).
        read_ahead: with `client`, where a walk that a run's checkpoint stopped goes on
            reading, so that the next run's walk takes up those pages (close it at the end).
        on_page: progress callback, see `PageCallback`.
        on_refresh_page: the same for the pages of a refresh window (records read again).
    """
    chosen = parse_resources(endpoints)
    open_client, system = _client_opener(
        client, client_id, client_secret, region, auth_url, api_url
    )
    walker = Walker(
        open_client=open_client,
        per_page={e.resource: e.check_per_page(per_page or e.page_limit) for e in chosen},
        expansions=_expansions(chosen, expansions),
        filters=walk_filters(chosen, period_field, since, until, cgid, outbound_filter),
        source_timezone=ZoneInfo(check_timezone(source_timezone)),
        refresh_window=_non_negative(refresh_window, "--refresh-window"),
        v6_lookback=_non_negative(v6_lookback, "--v6-lookback"),
        checkpoint_pages=_positive_or_none(checkpoint_pages, "--checkpoint-pages"),
        checkpoint_seconds=_positive_seconds_or_none(checkpoint_seconds, "--checkpoint-seconds"),
        full_refresh=full_refresh,
        on_page=on_page,
        on_refresh_page=on_refresh_page,
        parallel=_positive(parallel, "--parallel"),
        read_ahead=read_ahead if client is not None else None,
    )
    for endpoint in chosen:
        yield _resource(endpoint, walker, system, table_format, staging_deduplicated)


def _resource(
    endpoint: Endpoint,
    walker: Walker,
    system: System,
    table_format: TableFormat | None,
    staging_deduplicated: bool,
) -> DltResource:
    # Delta and Iceberg tables merge by upsert on the key; SQL destinations delete and insert,
    # which also lets a re-fetched response replace all its child rows (the merge key). Each
    # CGID comes once per checkpoint (`Checkpoint.accept`), so staging needs no deduplication
    # unless a load job ran twice: the hint is always set, True or False, so that a stored
    # schema never keeps an earlier run's value.
    deduplicated = {STAGING_DEDUPLICATED_HINT: staging_deduplicated and not table_format}
    disposition: TWriteDispositionConfig = {
        "disposition": "merge",
        "strategy": "upsert" if table_format else "delete-insert",
    }
    walk = partial(walk_strategy(endpoint).walk, endpoint, walker)
    row_keys = table_format == "iceberg"
    items = _checkpoint_items(endpoint, walker, _isolated(endpoint, walk), system, row_keys)
    spec = MAIN_TABLES[endpoint.record_kind]
    resource = dlt.resource(
        items(),
        name=endpoint.resource,
        write_disposition=disposition,
        primary_key=list(spec.primary_key),
        parallelized=True,
    )
    resource.apply_hints(table_format=table_format)
    # Every table is a variant with its own columns: variants copy the resource's hints, so
    # the main table's columns must not be on the resource itself.
    resource.apply_hints(
        table_name=endpoint.resource,
        columns=spec.dlt_columns(),
        create_table_variant=True,
        additional_table_hints=dict(deduplicated),
    )
    if spec.children:
        if not table_format:
            install_merge_key_only()  # the merge key selects the same rows, faster
        for child in spec.children:
            resource.apply_hints(
                table_name=child.table_name(endpoint.resource),
                primary_key=CHILD_ROW_KEY if row_keys else list(child.primary_key),
                merge_key="" if table_format else list(child.merge_key),
                columns=child.dlt_columns(row_key=row_keys),
                create_table_variant=True,
                additional_table_hints={**deduplicated, MERGE_KEY_ONLY_HINT: not table_format},
            )
    resource.apply_hints(
        table_name=REJECTED_VALUES.name,
        write_disposition="append",
        primary_key=(),
        columns=REJECTED_VALUES.dlt_columns(),
        create_table_variant=True,
    )
    return resource


def _checkpoint_items(
    endpoint: Endpoint,
    walker: Walker,
    walk: Callable[[Checkpoint], Iterator[ArrowPage]],
    system: System,
    row_keys: bool = False,
) -> Callable[[], Iterator[Any]]:
    """The pages the walk accepts into this run's checkpoint, as dlt items of about BATCH_ROWS
    rows per table; child tables get `CHILD_ROW_KEY` with `row_keys`. The walk is taken to
    its end: it stops itself where the checkpoint does."""

    def items() -> Iterator[Any]:
        _record_system(system)
        for name, table in batches(endpoint.resource, walk(walker.checkpoint())):
            if row_keys and is_child_table(name):
                table = with_row_key(table)
            yield dlt.mark.with_table_name(table, name)

    return items


def _isolated(
    endpoint: Endpoint, walk: Callable[[Checkpoint], Iterator[ArrowPage]]
) -> Callable[[Checkpoint], Iterator[ArrowPage]]:
    """The walk, ending its checkpoint at an API failure instead of failing the other
    resources' too: the pages it accepted are committed with their cursor, and the failure
    waits in the resource state (`failed`) for the runner, which stops this resource alone."""

    def pages(checkpoint: Checkpoint) -> Iterator[ArrowPage]:
        try:
            yield from walk(checkpoint)
        except ApiError as failure:
            ResourceState(dlt.current.resource_state(endpoint.resource)).failed = str(failure)

    return pages


def _record_system(system: System) -> None:
    """Keep the system the data comes from in the source state, which dlt commits with the
    data; never the data of another API host into a lake (a rotated client id is taken)."""
    state = dlt.current.source_state()
    check_system(System.stored(state.get("system")), system, new_client_id=True)
    state["system"] = system.as_state()


def _client_opener(
    client: ApiClient | None,
    client_id: str | None,
    client_secret: str | None,
    region: str | None,
    auth_url: str | None,
    api_url: str | None,
) -> tuple[Callable[[], contextlib.AbstractContextManager[ApiClient]], System]:
    """Shares `client` (left open), or opens a new client per resource walk; and the system
    they read."""
    if client is not None:
        return lambda: contextlib.nullcontext(client), System.of(client.api_url, client.client_id)
    if not client_id or not client_secret:
        raise ConfigError(
            f"missing credentials: set {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} "
            "(or sources.customergauge.client_id/client_secret in .dlt/secrets.toml)"
        )
    token_url, base_url = resolve_urls(region, auth_url=auth_url, api_url=api_url)
    opener = partial(
        ApiClient,
        client_id=client_id,
        client_secret=client_secret,
        auth_url=token_url,
        api_url=base_url,
        region=region,
    )
    return opener, System.of(base_url, client_id)


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
        not walk_strategy(e).takes_filters for e in chosen
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


def _non_negative(value: timedelta, flag: str) -> timedelta:
    if value < timedelta(0):
        raise ConfigError(f"{flag} must not be negative")
    return value


def _positive_or_none(value: int | None, flag: str) -> int | None:
    return value if value is None else _positive(value, flag)


def _positive_seconds_or_none(value: float | None, flag: str) -> float | None:
    if value is not None and not value > 0:
        raise ConfigError(f"{flag} must be more than 0, got {value}")
    return value


def _positive(value: int, flag: str) -> int:
    if value < 1:
        raise ConfigError(f"{flag} must be at least 1, got {value}")
    return value
