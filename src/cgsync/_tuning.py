"""Settings of a `cgsync sync` process, for speed, flat memory and disk; the library applies none.

Each one yields to the user's own config (dlt's `.dlt/config.toml` or the environment, and
`ARROW_DEFAULT_MEMORY_POOL`).
"""

from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Callable, Collection

import dlt
import pyarrow as pa

from cgsync._dlt import environment_name, turn_off_telemetry
from cgsync.settings import (
    DUCKDB_GLOBAL_CONFIG,
    DUCKDB_MEMORY_LIMITS,
    ENV_DUCKDB_GLOBAL_CONFIG,
    MALLOC_ARENAS,
    MALLOC_MMAP_THRESHOLD,
)

_DELETE_COMPLETED_JOBS = "load.delete_completed_jobs"
_LOAD_WORKERS = "load.workers"
_DUCKDB_GLOBAL_CONFIG = "destination.duckdb.credentials.global_config"
_ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL"
# glibc's mallopt parameters, and the environment variables that set them at process start.
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8
_MALLOC_ENV = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_")


def tune_sync_process(skip: Collection[str] = ()) -> None:
    """No dlt telemetry thread, no loaded files kept, a DuckDB of bounded memory on one thread,
    Arrow on malloc (it hands freed pages back sooner than jemalloc), a compact malloc. `skip` names steps of TUNING_STEPS not to take (the benchmark's ablation)."""
    if unknown := set(skip) - set(TUNING_STEPS):
        raise ValueError(f"no tuning step {min(unknown)!r}: use one of {list(TUNING_STEPS)}")
    for name, step in TUNING_STEPS.items():
        if name not in skip:
            step()


def _delete_loaded_files() -> None:
    # A loaded package's files are a second copy of its data (about 1 GB after a 1M-record
    # first load): dlt keeps the package's metadata, and deletes them once it is loaded.
    if dlt.config.get(_DELETE_COMPLETED_JOBS) is None:
        os.environ[environment_name(_DELETE_COMPLETED_JOBS)] = "true"


def _bounded_duckdb() -> None:
    if dlt.config.get(_DUCKDB_GLOBAL_CONFIG) is None:
        os.environ[ENV_DUCKDB_GLOBAL_CONFIG] = json.dumps(DUCKDB_GLOBAL_CONFIG)


def raise_duckdb_memory_limit() -> str | None:
    """Move the sync's own DuckDB memory limit one step up DUCKDB_MEMORY_LIMITS, for the
    connections dlt opens from now on; the new limit, or None (nothing changed) when the limit in
    force is the user's, no limit was set, or it is the largest step already."""
    try:
        config = json.loads(os.environ.get(ENV_DUCKDB_GLOBAL_CONFIG, ""))
    except ValueError:
        return None
    if not isinstance(config, dict) or config.get("memory_limit") not in DUCKDB_MEMORY_LIMITS:
        return None
    if {**config, "memory_limit": DUCKDB_GLOBAL_CONFIG["memory_limit"]} != DUCKDB_GLOBAL_CONFIG:
        return None  # the user's own settings, whatever their limit
    step = DUCKDB_MEMORY_LIMITS.index(config["memory_limit"]) + 1
    if step == len(DUCKDB_MEMORY_LIMITS):
        return None
    config["memory_limit"] = DUCKDB_MEMORY_LIMITS[step]
    os.environ[ENV_DUCKDB_GLOBAL_CONFIG] = json.dumps(config)
    return config["memory_limit"]


def load_one_job_at_a_time() -> bool:
    """Have dlt load a package's jobs one after another from now on (it runs them side by side,
    each with its own share of DuckDB's memory); False (nothing changed) when the workers are the
    user's, or one already."""
    if dlt.config.get(_LOAD_WORKERS) is not None:
        return False
    os.environ[environment_name(_LOAD_WORKERS)] = "1"
    return True


def _arrow_on_malloc() -> None:
    if _ARROW_POOL not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())


def _compact_malloc_unless_set() -> None:
    if not any(name in os.environ for name in _MALLOC_ENV):
        _compact_malloc()


def _compact_malloc() -> None:
    """glibc: two malloc arenas instead of up to eight per core, and a fixed mmap threshold, so
    that what the read-ahead and load threads free goes back to the system: the 1M replay peaked
    about 40 MB lower (350 against 390 MB) for about 5% more CPU. Elsewhere, nothing."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
        mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)


TUNING_STEPS: dict[str, Callable[[], None]] = {
    "telemetry": turn_off_telemetry,
    "loaded-files": _delete_loaded_files,
    "duckdb-memory": _bounded_duckdb,
    "arrow-malloc": _arrow_on_malloc,
    "compact-malloc": _compact_malloc_unless_set,
}
"""Each step of `tune_sync_process`, in order, by the name the benchmark's ablation uses."""
