"""SyncOptions, the one configuration object: its defaults are settings.py's."""

from __future__ import annotations

from dataclasses import fields

from cgsync import Filters, Lake, SyncOptions, settings

SETTINGS_DEFAULTS = {
    "endpoints": settings.DEFAULT_RESOURCES,
    "source_timezone": settings.DEFAULT_SOURCE_TIMEZONE,
    "refresh_window": settings.DEFAULT_REFRESH_WINDOW,
    "v6_lookback": settings.DEFAULT_V6_LOOKBACK,
    "checkpoint_pages": settings.DEFAULT_CHECKPOINT_PAGES,
    "checkpoint_seconds": settings.DEFAULT_CHECKPOINT_SECONDS,
    "parallel": settings.DEFAULT_PARALLEL,
}


# The fields no setting gives a default: unset, each resolved where it is used (credentials
# from dlt's secrets, hosts from the region, page sizes and expansions per endpoint).
UNSET = {
    "client_id": None,
    "client_secret": None,
    "region": None,
    "auth_url": None,
    "api_url": None,
    "expansions": None,
    "per_page": None,
    "full_refresh": False,
    "reconcile": False,
    "new_client_id": False,
}


def test_the_defaults_are_the_settings() -> None:
    defaults = SyncOptions()
    assert {name: getattr(defaults, name) for name in SETTINGS_DEFAULTS} == SETTINGS_DEFAULTS
    assert {name: getattr(defaults, name) for name in UNSET} == UNSET
    assert (defaults.filters, defaults.lake) == (Filters(), Lake())
    assert {f.name for f in fields(SyncOptions)} == {*SETTINGS_DEFAULTS, *UNSET, "filters", "lake"}


def test_the_lakes_defaults_are_the_settings() -> None:
    lake = SyncOptions().lake
    assert (lake.destination, lake.dataset, lake.pipeline_name, lake.pipelines_dir) == (
        settings.DEFAULT_DESTINATION,
        settings.DEFAULT_DATASET,
        settings.DEFAULT_PIPELINE_NAME,
        None,
    )
    assert lake.table_format == settings.DEFAULT_TABLE_FORMAT
