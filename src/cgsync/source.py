"""The CustomerGauge dlt source: resources `responses`, `non_responses` and `responses_v6`.

Use it in any dlt pipeline::

    import dlt
    from cgsync import customergauge_source

    pipeline = dlt.pipeline("cgsync", destination="duckdb", dataset_name="customergauge")
    pipeline.run(customergauge_source())

What to sync is a `cgsync.SyncOptions` (default `ONE_RUN`: everything, to the end in one run).
Credentials come from the options, the arguments or dlt's config and secrets
(`sources.customergauge.client_id`, `sources.customergauge.client_secret`). Every resource
keeps its cursors in its dlt resource state, which dlt commits with the data of the same load
package, so a run that dies never loses data and the next run resumes. See docs/sync.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from typing import Any

import dlt
from dlt.common.configuration import configspec
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.schema.typing import TWriteDispositionConfig
from dlt.common.typing import TSecretStrValue

from cgsync._arrow import ArrowPage
from cgsync._batches import batches
from cgsync._checkpoints import Checkpoint, ResourceState
from cgsync._client import ApiClient
from cgsync._config import (
    SyncOptions,
    api_client_arguments,
    checked_limits,
    endpoint_expansions,
    page_sizes,
    source_zone,
    walk_filters,
)
from cgsync._dlt import MERGE_KEY_ONLY_HINT, STAGING_DEDUPLICATED_HINT, install_merge_key_only
from cgsync._endpoints import Endpoint, parse_resources
from cgsync._exceptions import ApiError
from cgsync._lake import System, TableFormat, check_system
from cgsync._pages import ReadAhead
from cgsync._tables import (
    CHILD_ROW_KEY,
    MAIN_TABLES,
    REJECTED_VALUES,
    is_child_table,
    with_row_key,
)
from cgsync._walks import PageCallback, Walker, walk_strategy
from cgsync.settings import SOURCE_NAME

__all__ = [
    "ONE_RUN",
    "SOURCE_NAME",
    "STAGING_DEDUPLICATED_HINT",
    "CustomerGaugeConnection",
    "PageCallback",
    "customergauge_source",
]


@configspec
class CustomerGaugeConnection(BaseConfiguration):
    """What dlt's config and secrets give the source (`sources.customergauge.*`): the Connected
    App's credentials and its hosts. Nothing else is resolved from dlt's config."""

    client_id: TSecretStrValue | None = None
    client_secret: TSecretStrValue | None = None
    region: str | None = None
    auth_url: str | None = None
    api_url: str | None = None


ONE_RUN = SyncOptions(checkpoint_pages=None, checkpoint_seconds=None)
"""The source's options unless given: SyncOptions' defaults, walked to the end in one run (a
plain dlt pipeline runs the source once)."""


@dlt.source(name=SOURCE_NAME, max_table_nesting=0, spec=CustomerGaugeConnection)
def customergauge_source(
    options: SyncOptions | None = None,
    *,
    client_id: str | None = dlt.secrets.value,
    client_secret: str | None = dlt.secrets.value,
    region: str | None = None,
    auth_url: str | None = None,
    api_url: str | None = None,
    client: ApiClient | None = None,
    read_ahead: ReadAhead | None = None,
    on_page: PageCallback | None = None,
    on_refresh_page: PageCallback | None = None,
    table_format: TableFormat | None = None,
    staging_deduplicated: bool = False,
) -> Iterator[dlt.sources.DltResource]:
    """CustomerGauge responses and non-responses, incrementally, from the sync endpoints.

    Args:
        options: what to sync and how (`cgsync.SyncOptions`; default `ONE_RUN`). Its
            `checkpoint_pages` and `checkpoint_seconds` end one run of the source early (the
            next run resumes); None walks to the end. Its `lake` is not read here.
        client_id, client_secret: the Connected App's credentials, unless in `options`; dlt
            resolves them (and `region`, `auth_url`, `api_url`) from its config and secrets.
        region: `eu`, `us` or `au`; `auth_url` / `api_url` override the hosts.
        client: an open ApiClient to share across runs (then credentials are not needed).
        read_ahead: with `client`, where a walk that a run's checkpoint stopped goes on
            reading, so that the next run's walk takes up those pages (close it at the end).
        on_page: progress callback, see `PageCallback`.
        on_refresh_page: the same for the pages of a refresh window (records read again).
        table_format: `delta` or `iceberg` on the filesystem destination (merge needs one).
        staging_deduplicated: tell the SQL merge that staging holds each key once, so it skips
            its deduplication. True only where a load job is never run twice: see
            `cgsync._dlt.reset_staging_deduplicated`.
    """
    options = options or ONE_RUN
    chosen = parse_resources(options.endpoints)
    connection = {
        "client_id": options.client_id or client_id,
        "client_secret": options.client_secret or client_secret,
        "region": options.region or region,
        "auth_url": options.auth_url or auth_url,
        "api_url": options.api_url or api_url,
    }
    open_client, system = _client_opener(client, replace(options, **connection))
    walker = Walker(
        open_client=open_client,
        per_page=page_sizes(options, chosen),
        expansions=endpoint_expansions(options, chosen),
        filters=walk_filters(options, chosen),
        source_timezone=source_zone(options),
        options=checked_limits(options),
        read_ahead=read_ahead if client is not None else None,
        on_page=on_page,
        on_refresh_page=on_refresh_page,
    )
    for endpoint in chosen:
        yield _resource(endpoint, walker, system, table_format, staging_deduplicated)


def _resource(
    endpoint: Endpoint,
    walker: Walker,
    system: System,
    table_format: TableFormat | None,
    staging_deduplicated: bool,
) -> dlt.sources.DltResource:
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
    client: ApiClient | None, options: SyncOptions
) -> tuple[Callable[[], contextlib.AbstractContextManager[ApiClient]], System]:
    """Shares `client` (left open), or opens a new client per resource walk; and the system
    they read."""
    if client is not None:
        return lambda: contextlib.nullcontext(client), System.of(client.api_url, client.client_id)
    arguments = api_client_arguments(options)
    return partial(ApiClient, **arguments), System.of(arguments["api_url"], arguments["client_id"])
