"""The configuration of one sync, from the command line (or a library call) down to the walk."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import dlt

from cgsync._exceptions import ConfigError
from cgsync._lake import Lake
from cgsync._walks import Filters
from cgsync.settings import (
    DEFAULT_CHECKPOINT_PAGES,
    DEFAULT_CHECKPOINT_SECONDS,
    DEFAULT_REFRESH_WINDOW,
    DEFAULT_RESOURCES,
    DEFAULT_SOURCE_TIMEZONE,
    DEFAULT_V6_LOOKBACK,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
)
from cgsync.source import SOURCE_NAME

__all__ = ["SyncOptions", "credentials", "source_arguments"]


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
    per_page: int | None = None
    filters: Filters = field(default_factory=Filters)
    source_timezone: str = DEFAULT_SOURCE_TIMEZONE
    refresh_window: timedelta = DEFAULT_REFRESH_WINDOW
    v6_lookback: timedelta = DEFAULT_V6_LOOKBACK
    checkpoint_pages: int = DEFAULT_CHECKPOINT_PAGES
    checkpoint_seconds: float | None = DEFAULT_CHECKPOINT_SECONDS
    """A checkpoint ends after `checkpoint_pages` or this many seconds (None: pages only)."""
    full_refresh: bool = False
    parallel: int = 1
    """Windows walked side by side in a v7 resource's initial load (see docs/sync.md)."""
    reconcile: bool = False
    """Walk everything again, then delete what the API no longer lists (cgsync._reconcile)."""
    new_client_id: bool = False
    """Move the lake to this client id of the system it mirrors (rotated credentials)."""
    lake: Lake = field(default_factory=Lake)

    def __repr__(self) -> str:  # never the secret
        return f"SyncOptions(lake={self.lake!r}, endpoints={self.endpoints!r})"


def source_arguments(options: SyncOptions, **overrides: Any) -> dict[str, Any]:
    """The source's arguments for `options`, with `overrides`."""
    arguments = dict(
        endpoints=list(options.endpoints),
        expansions=list(options.expansions) if options.expansions is not None else None,
        per_page=options.per_page,
        **asdict(options.filters),
        source_timezone=options.source_timezone,
        refresh_window=options.refresh_window,
        v6_lookback=options.v6_lookback,
        checkpoint_pages=options.checkpoint_pages,
        checkpoint_seconds=options.checkpoint_seconds,
        parallel=options.parallel,
    )
    return {**arguments, **overrides}


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


def _dlt_secret(name: str) -> str | None:
    value: Any = dlt.secrets.get(f"sources.{SOURCE_NAME}.{name}")
    return str(value) if value else None
