"""The configuration of one sync, from the command line (or a library call) down to the walk.

`SyncOptions` is the one configuration object: the command line builds it, the runner hands it
to the source once per checkpoint (with that checkpoint's changes, `dataclasses.replace`), and
the walks read it. Its defaults are settings.py's. The functions below check it (ConfigError
names the flag) and derive, once per source, what the walks need in another form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dlt

from cgsync._arrow import check_timezone
from cgsync._client import resolve_urls
from cgsync._endpoints import Endpoint
from cgsync._exceptions import ConfigError
from cgsync._lake import Lake
from cgsync._walks import Filters, walk_strategy
from cgsync.settings import (
    DEFAULT_CHECKPOINT_PAGES,
    DEFAULT_CHECKPOINT_SECONDS,
    DEFAULT_PARALLEL,
    DEFAULT_REFRESH_WINDOW,
    DEFAULT_RESOURCES,
    DEFAULT_SOURCE_TIMEZONE,
    DEFAULT_V6_LOOKBACK,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    SOURCE_NAME,
)

__all__ = [
    "SyncOptions",
    "api_client_arguments",
    "checked_limits",
    "credentials",
    "endpoint_expansions",
    "page_sizes",
    "source_zone",
    "walk_filters",
]


@dataclass(frozen=True)
class SyncOptions:
    """Everything that configures one sync; the command line builds it from flags and env."""

    client_id: str | None = None
    client_secret: str | None = None
    region: str | None = None
    auth_url: str | None = None
    api_url: str | None = None
    endpoints: tuple[str, ...] = DEFAULT_RESOURCES
    expansions: tuple[str, ...] | None = None
    """`with[]` values, each sent to the endpoints that know it (None: all)."""
    per_page: int | None = None
    """The page size (None: each endpoint's largest)."""
    filters: Filters = field(default_factory=Filters)
    source_timezone: str = DEFAULT_SOURCE_TIMEZONE
    refresh_window: timedelta = DEFAULT_REFRESH_WINDOW
    v6_lookback: timedelta = DEFAULT_V6_LOOKBACK
    checkpoint_pages: int | None = DEFAULT_CHECKPOINT_PAGES
    """Pages per resource per checkpoint (None: no limit)."""
    checkpoint_seconds: float | None = DEFAULT_CHECKPOINT_SECONDS
    """A checkpoint also ends after the page that takes it past this many seconds (None: no
    time limit). With both None, one run of the source walks to the end."""
    full_refresh: bool = False
    parallel: int = DEFAULT_PARALLEL
    """Windows walked side by side in a v7 resource's initial load (see docs/sync.md)."""
    reconcile: bool = False
    """Walk everything again, then delete what the API no longer lists (cgsync._reconcile)."""
    new_client_id: bool = False
    """Move the lake to this client id of the system it mirrors (rotated credentials)."""
    lake: Lake = field(default_factory=Lake)

    def __repr__(self) -> str:  # never the secret
        return f"SyncOptions(lake={self.lake!r}, endpoints={self.endpoints!r})"


def credentials(options: SyncOptions) -> tuple[str, str]:
    """The client id and secret: from the options, else from dlt's config and secrets."""
    client_id = options.client_id or _dlt_secret("client_id")
    client_secret = options.client_secret or _dlt_secret("client_secret")
    if not client_id or not client_secret:
        raise ConfigError(
            f"missing credentials: set {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} "
            f"(or sources.{SOURCE_NAME}.client_id/client_secret in .dlt/secrets.toml)"
        )
    return client_id, client_secret


def api_client_arguments(options: SyncOptions) -> dict[str, Any]:
    """What an `ApiClient` of `options` is made with: the credentials, the token URL and the
    API base (the region's, unless overridden)."""
    client_id, client_secret = credentials(options)
    auth_url, api_url = resolve_urls(
        options.region, auth_url=options.auth_url, api_url=options.api_url
    )
    return {
        "client_id": client_id,
        "client_secret": client_secret,
        "auth_url": auth_url,
        "api_url": api_url,
        "region": options.region,
    }


def _dlt_secret(name: str) -> str | None:
    value: Any = dlt.secrets.get(f"sources.{SOURCE_NAME}.{name}")
    return str(value) if value else None


def page_sizes(options: SyncOptions, chosen: Sequence[Endpoint]) -> dict[str, int]:
    """Each endpoint's `per_page`: the options' if it accepts it, else its largest."""
    return {e.resource: e.check_per_page(options.per_page or e.page_limit) for e in chosen}


def endpoint_expansions(
    options: SyncOptions, chosen: Sequence[Endpoint]
) -> dict[str, tuple[str, ...]]:
    """Each endpoint's `with[]` values: those of the options it knows (default: all it has)."""
    expansions = options.expansions
    if expansions is None:
        return {e.resource: e.expansions for e in chosen}
    known = {name for e in chosen for name in e.expansions}
    unknown = [name for name in expansions if name not in known]
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ConfigError(f"--with {','.join(unknown)} is not available here: allowed: {allowed}")
    wanted = tuple(dict.fromkeys(expansions))
    return {e.resource: tuple(n for n in wanted if n in e.expansions) for e in chosen}


def walk_filters(options: SyncOptions, chosen: Sequence[Endpoint]) -> Filters:
    """The options' filters, checked against the endpoints; a period without a field is on
    `date_creation`."""
    filters = options.filters
    period_field, since, until = filters.period_field, filters.since, filters.until
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
    if (period_field or filters.cgid is not None or filters.outbound_filter) and any(
        not walk_strategy(e).takes_filters for e in chosen
    ):
        raise ConfigError("responses_v6 takes no filters: drop it from --endpoints or the filters")
    return replace(filters, period_field=period_field)


def source_zone(options: SyncOptions) -> ZoneInfo:
    """The CustomerGauge system's time zone, in which its dates are read."""
    return ZoneInfo(check_timezone(options.source_timezone))


def checked_limits(options: SyncOptions) -> SyncOptions:
    """`options`, if their durations, checkpoint limits and parallelism are in range."""
    _non_negative(options.refresh_window, "--refresh-window")
    _non_negative(options.v6_lookback, "--v6-lookback")
    if options.checkpoint_pages is not None:
        _positive(options.checkpoint_pages, "--checkpoint-pages")
    seconds = options.checkpoint_seconds
    if seconds is not None and not seconds > 0:
        raise ConfigError(f"--checkpoint-seconds must be more than 0, got {seconds}")
    _positive(options.parallel, "--parallel")
    return options


def _non_negative(value: timedelta, flag: str) -> None:
    if value < timedelta(0):
        raise ConfigError(f"{flag} must not be negative")


def _positive(value: int, flag: str) -> None:
    if value < 1:
        raise ConfigError(f"{flag} must be at least 1, got {value}")
