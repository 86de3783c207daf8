"""Settings of a `cgsync sync` process, for speed, flat memory and disk; the library applies none.

Each one yields to the user's own config (dlt's `.dlt/config.toml` or the environment, and
`ARROW_DEFAULT_MEMORY_POOL`).
"""

from __future__ import annotations

import gc
import json
import os

import dlt
import pyarrow as pa

from cgsync.settings import DUCKDB_GLOBAL_CONFIG, ENV_DUCKDB_GLOBAL_CONFIG

_TELEMETRY = "runtime.dlthub_telemetry"
_DELETE_COMPLETED_JOBS = "load.delete_completed_jobs"
_DUCKDB_GLOBAL_CONFIG = "destination.duckdb.credentials.global_config"
_ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL"


def tune_sync_process() -> None:
    """No dlt telemetry thread, no loaded files kept, a DuckDB of bounded memory on one thread,
    Arrow on malloc (it hands freed pages back sooner than jemalloc), a quieter GC."""
    if dlt.config.get(_TELEMETRY) is None:
        os.environ[_environment_name(_TELEMETRY)] = "false"
    # A loaded package's files are a second copy of its data (about 1 GB after a 1M-record
    # first load): dlt keeps the package's metadata, and deletes them once it is loaded.
    if dlt.config.get(_DELETE_COMPLETED_JOBS) is None:
        os.environ[_environment_name(_DELETE_COMPLETED_JOBS)] = "true"
    if dlt.config.get(_DUCKDB_GLOBAL_CONFIG) is None:
        os.environ[ENV_DUCKDB_GLOBAL_CONFIG] = json.dumps(DUCKDB_GLOBAL_CONFIG)
    if _ARROW_POOL not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())
    # The imports made most of the objects a sync keeps: the collector need not walk them again.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _environment_name(key: str) -> str:
    return key.upper().replace(".", "__")
