"""dlt beyond its public API: every such use of cgsync is here, guarded, and pinned by a
contract test (tests/test_dlt.py) that fails when a dlt release changes what it relies on.

Each use either raises a clear error or falls back to dlt's own, correct behaviour when dlt no
longer offers it. docs/architecture.md says what each changes and why, and what dlt could offer
instead.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination import Destination

from cgsync._exceptions import exception_chain

__all__ = [
    "MERGE_KEY_ONLY_HINT",
    "STAGING_DEDUPLICATED_HINT",
    "destination_kind",
    "dlt_pipelines_dir",
    "duckdb_file_destination",
    "duckdb_lock_conflict",
    "environment_name",
    "iceberg_tables",
    "install_merge_key_only",
    "is_duckdb_load_conflict",
    "is_duckdb_out_of_memory",
    "open_iceberg_catalog",
    "open_tables",
    "read_only_duckdb",
    "reset_staging_deduplicated",
    "sync_destination_once",
    "turn_off_telemetry",
]

logger = logging.getLogger("cgsync")

# -- Destinations ------------------------------------------------------------------------------

# Public factories; a destination of another kind is named by the tail of its type.
_KINDS = ("duckdb", "postgres", "filesystem")


def destination_kind(destination: Destination[Any, Any]) -> str:
    """`duckdb`, `postgres`, `filesystem`, ... (the destination type's short name)."""
    for kind in _KINDS:
        if isinstance(destination, getattr(dlt.destinations, kind)):
            return kind
    return str(destination.destination_type).rsplit(".", 1)[-1]


def duckdb_file_destination(path: Path | str, *, read_only: bool = False) -> Destination[Any, Any]:
    """A DuckDB destination of the file at `path`, its other settings from dlt's config.

    The credentials are made with the path set, not given as a string: dlt parses a string as a
    connection URL each time it resolves the destination (about 60 times in one sync), which
    imports SQLAlchemy where it is installed (0.3 s) and costs about 7 ms more each time.
    """
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    credentials = DuckDbCredentials(read_only=read_only)
    credentials.database = str(path)
    return dlt.destinations.duckdb(credentials=credentials)


def read_only_duckdb(path: Path) -> Destination[Any, Any]:
    """A DuckDB destination that opens `path` read-only (the report never writes)."""
    return duckdb_file_destination(path, read_only=True)


def dlt_pipelines_dir() -> Path:
    """dlt's directory of pipelines' working state (`DLT_DATA_DIR` and the like applied)."""
    from dlt.common.pipeline import get_dlt_pipelines_dir

    return Path(get_dlt_pipelines_dir())


# -- The lake's state, restored once ------------------------------------------------------------


def sync_destination_once(pipeline: dlt.Pipeline) -> None:
    """`pipeline.sync_destination()`, and dlt told so: its `run` restores the state from the
    destination the first time it runs, again, unless its private `_state_restored` says that
    was done (a second round trip to the lake: 6% of a sync with nothing new).

    Where this dlt has no such flag, `run` restores the state a second time, which is correct.
    """
    pipeline.sync_destination()
    if isinstance(getattr(pipeline, "_state_restored", None), bool):
        pipeline._state_restored = True


# -- Runtime ---------------------------------------------------------------------------------

_TELEMETRY = "runtime.dlthub_telemetry"


def environment_name(key: str) -> str:
    """The environment variable dlt reads for config `key` (`a.b` -> `A__B`)."""
    return key.upper().replace(".", "__")


def turn_off_telemetry() -> None:
    """dlt's anonymous telemetry off, unless the user's own config or environment sets it.

    Reading dlt's config starts dlt's runtime, and with it the telemetry of dlt's defaults
    (on): setting the environment afterwards alone changes nothing, so the telemetry is
    stopped and the runtime started again with it off.
    """
    if dlt.config.get(_TELEMETRY) is not None:
        return
    os.environ[environment_name(_TELEMETRY)] = "false"
    try:
        from dlt.common.runtime.telemetry import is_telemetry_started, stop_telemetry
    except ImportError:  # a dlt that no longer has them: the environment is all we can do
        return
    if is_telemetry_started():
        stop_telemetry()
        dlt.current.run_context().initialize_runtime()


# -- Errors dlt wraps --------------------------------------------------------------------------


def is_duckdb_out_of_memory(exc: BaseException) -> bool:
    """Whether DuckDB ran out of its memory_limit somewhere in `exc`'s chain, or in a load job
    dlt gave up retrying."""
    import duckdb

    errors = list(_load_errors(exc))
    # dlt keeps DuckDB's exception as a cause; its text is the fallback should it not.
    return any(isinstance(e, duckdb.OutOfMemoryException) for e in errors) or any(
        "Out of Memory Error" in str(e) for e in errors
    )


def is_duckdb_load_conflict(exc: BaseException) -> bool:
    """Whether a DuckDB load job dlt gave up retrying failed on a transaction conflict.

    dlt runs a package's jobs side by side; after one ran out of memory, its retries conflict
    ("Conflict on tuple deletion!"), so the conflict is what reaches the sync.
    """
    import duckdb

    return any(isinstance(e, duckdb.TransactionException) for e in _load_errors(exc))


def _load_errors(exc: BaseException) -> Iterator[BaseException]:
    """`exc`'s chain, and the chain of the job error in each dlt LoadClientJobRetry in it."""
    for error in exception_chain(exc):
        yield error
        # LoadClientJobRetry keeps the job's error as an attribute, not as its cause.
        job_error = getattr(error, "client_exception", None)
        if isinstance(job_error, BaseException):
            yield from exception_chain(job_error)


def duckdb_lock_conflict(exc: BaseException) -> BaseException | None:
    """The error in `exc`'s chain that says another process holds the DuckDB file's lock."""
    # DuckDB raises a plain IOException for a held lock; only its text tells it apart.
    held = (e for e in exception_chain(exc) if "Could not set lock on file" in str(e))
    return next(held, None)


# -- The merge key alone ------------------------------------------------------------------------

MERGE_KEY_ONLY_HINT = "x-cgsync-merge-key-only"
"""A table hint of cgsync's child tables: their SQL merge selects rows by the merge key alone."""

_merge_key_only: ContextVar[bool] = ContextVar("cgsync_merge_key_only", default=False)


def _merge_job() -> Any:
    from dlt.destinations.sql_jobs import SqlMergeFollowupJob

    return SqlMergeFollowupJob


def _dlt_function(name: str) -> Any:
    """dlt's own classmethod `name` of its SQL merge job, as a plain function (None: gone)."""
    method = inspect.getattr_static(_merge_job(), name, None)
    if not isinstance(method, classmethod):
        return None
    return getattr(method.__func__, "_dlt", method.__func__)  # the patch keeps dlt's own


def _installed() -> bool:
    method = inspect.getattr_static(_merge_job(), "gen_merge_sql", None)
    return hasattr(getattr(method, "__func__", None), "_dlt")


_EXPECTED_PARAMETERS = {
    "_gen_key_table_clauses": ["cls", "primary_keys", "merge_keys"],
    "gen_merge_sql": ["cls", "table_chain", "sql_client"],
}


def merge_patch_supported() -> bool:
    """Whether dlt's SQL merge job still has the two classmethods the patch wraps, as expected."""
    for name, parameters in _EXPECTED_PARAMETERS.items():
        function = _dlt_function(name)
        if function is None or list(inspect.signature(function).parameters) != parameters:
            return False
    return True


@contextmanager
def merge_key_only() -> Iterator[None]:
    """Within: a merge key that is part of the primary key is the only condition on the rows."""
    token = _merge_key_only.set(True)
    try:
        yield
    finally:
        _merge_key_only.reset(token)


def install_merge_key_only() -> bool:
    """Make dlt's SQL merges of tables with MERGE_KEY_ONLY_HINT select the rows to replace by
    the merge key alone, when it is part of the primary key: the same rows, in one plain join.

    Every other table keeps dlt's own SQL. Idempotent; False (and dlt's SQL everywhere, which
    is correct, only slower) when this dlt no longer has what the patch wraps.
    """
    if _installed():
        return True
    if not merge_patch_supported():
        logger.warning(
            "this dlt's merge job has changed: child tables merge with dlt's own SQL "
            "(correct, slower on large lakes)"
        )
        return False
    dlt_key_clauses = _dlt_function("_gen_key_table_clauses")
    dlt_merge_sql = _dlt_function("gen_merge_sql")

    def _gen_key_table_clauses(
        cls: Any, primary_keys: Sequence[str], merge_keys: Sequence[str]
    ) -> list[str]:
        if _merge_key_only.get() and merge_keys and set(merge_keys) <= set(primary_keys):
            primary_keys = []  # implied by the merge key
        return dlt_key_clauses(cls, primary_keys, merge_keys)  # type: ignore[no-any-return]

    def gen_merge_sql(cls: Any, table_chain: Sequence[Any], sql_client: Any) -> list[str]:
        if not table_chain[0].get(MERGE_KEY_ONLY_HINT):
            return dlt_merge_sql(cls, table_chain, sql_client)  # type: ignore[no-any-return]
        with merge_key_only():
            return dlt_merge_sql(cls, table_chain, sql_client)  # type: ignore[no-any-return]

    for name, function, original in (
        ("_gen_key_table_clauses", _gen_key_table_clauses, dlt_key_clauses),
        ("gen_merge_sql", gen_merge_sql, dlt_merge_sql),
    ):
        function._dlt = original  # type: ignore[attr-defined]
        setattr(_merge_job(), name, classmethod(function))
    return True


# -- Staging deduplication of load packages ------------------------------------------------------

STAGING_DEDUPLICATED_HINT = "x-stage-data-deduplicated"
"""dlt's table hint (`deduplicated` in its merge config) that skips the staging deduplication."""


def reset_staging_deduplicated(pipeline: dlt.Pipeline) -> bool:
    """Turn the staging deduplication back on in the pipeline's normalized packages.

    False when this dlt offers no way to change them: then no package may skip it.
    """
    # dlt has no public way to change a package's schema; this is the one its loader reads.
    get_storage = getattr(pipeline, "_get_load_storage", None)
    packages = getattr(get_storage() if get_storage else None, "normalized_packages", None)
    if packages is None or not hasattr(packages, "save_schema"):
        return False
    for load_id in pipeline.list_normalized_load_packages():
        schema = packages.load_schema(load_id)
        marked = [t for t in schema.tables.values() if t.get(STAGING_DEDUPLICATED_HINT)]
        for table in marked:
            table[STAGING_DEDUPLICATED_HINT] = False  # type: ignore[literal-required]
        if marked:
            packages.save_schema(load_id, schema)
    return True


# -- Open table formats -------------------------------------------------------------------------


def open_iceberg_catalog(pipeline: dlt.Pipeline) -> None:
    """Open the pipeline's Iceberg catalog (a SQL catalog creates its tables when first opened).

    Raises what the catalog's driver raises; does nothing where this dlt cannot open it alone.
    """
    with pipeline.destination_client() as client:
        get_catalog = getattr(client, "get_open_table_catalog", None)
        if get_catalog is not None:
            get_catalog("iceberg")


def open_tables(dataset: dlt.Dataset) -> dict[str, Any]:
    """A filesystem dataset's Delta and Iceberg tables, as Arrow data DuckDB can scan."""
    schema, client = dataset.schema, dataset.open_table_client
    tables: dict[str, Any] = {}
    for name in schema.data_table_names(seen_data_only=True):
        table_format = schema.tables[name].get("table_format")
        if table_format == "delta":
            tables[name] = client.load_open_table("delta", name).to_pyarrow_dataset()
        elif table_format == "iceberg":
            # Read into memory: a scan applies the table's deletes (pyiceberg).
            tables[name] = client.load_open_table("iceberg", name).scan().to_arrow()
    return tables


def iceberg_tables(pipeline: dlt.Pipeline, *names: str) -> dict[str, Any]:
    """The pipeline's Iceberg tables (pyiceberg's Table), by name."""
    from dlt.common.libs.pyiceberg import get_iceberg_tables

    return dict(get_iceberg_tables(pipeline, *names))
