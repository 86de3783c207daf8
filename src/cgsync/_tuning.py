"""Settings of a `cgsync sync` process, for speed and flat memory; the library applies none.

Each one yields to the user's own dlt config (`.dlt/config.toml` or the environment).
"""

from __future__ import annotations

import gc
import json
import os

import dlt

from cgsync.settings import DUCKDB_GLOBAL_CONFIG

_TELEMETRY = "runtime.dlthub_telemetry"
_DUCKDB_GLOBAL_CONFIG = "destination.duckdb.credentials.global_config"


def tune_sync_process() -> None:
    """No dlt telemetry thread, a DuckDB of bounded memory on one thread, a quieter GC."""
    if dlt.config.get(_TELEMETRY) is None:
        os.environ[_environment_name(_TELEMETRY)] = "false"
    if dlt.config.get(_DUCKDB_GLOBAL_CONFIG) is None:
        os.environ[_environment_name(_DUCKDB_GLOBAL_CONFIG)] = json.dumps(DUCKDB_GLOBAL_CONFIG)
    # The imports made most of the objects a sync keeps: the collector need not walk them again.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _environment_name(key: str) -> str:
    return key.upper().replace(".", "__")
