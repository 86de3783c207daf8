"""dlt's failures as cgsync's errors: each with its exit code and one line naming what to fix."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.pipeline.exceptions import PipelineStepFailed

from cgsync._dlt import destination_kind, duckdb_lock_conflict, is_duckdb_out_of_memory
from cgsync._exceptions import (
    ApiError,
    CGSyncError,
    ConfigError,
    SyncLockedError,
    exception_chain,
)
from cgsync.settings import ENV_DUCKDB_GLOBAL_CONFIG

__all__ = ["dlt_errors", "duckdb_locked_message", "one_line"]


@contextmanager
def dlt_errors(pipeline: dlt.Pipeline) -> Iterator[None]:
    """Re-raise what dlt wrapped: our CGSyncError or a Ctrl-C; other failures as one line."""
    try:
        yield
    except CGSyncError:
        raise
    except Exception as exc:
        cause = _wrapped_cause(exc)
        if cause is not None:
            raise cause from None
        conflict = duckdb_lock_conflict(exc)
        if conflict is not None:
            raise SyncLockedError(duckdb_locked_message(conflict)) from None
        if isinstance(exc, ConfigFieldMissingException):
            raise ConfigError(f"destination configuration: {one_line(exc)}") from None
        if destination_kind(pipeline.destination) == "duckdb" and is_duckdb_out_of_memory(exc):
            raise ApiError(
                f"{getattr(exc, 'step', 'sync')} into duckdb ran out of DuckDB's memory_limit: "
                f'raise it, e.g. {ENV_DUCKDB_GLOBAL_CONFIG}=\'{{"memory_limit": "512MB"}}\''
            ) from None
        if isinstance(exc, (PipelineStepFailed, OSError)):
            raise ApiError(
                f"{getattr(exc, 'step', 'sync')} into {destination_kind(pipeline.destination)} failed: "
                f"{one_line(exc)}"
            ) from None
        raise


def _wrapped_cause(exc: BaseException) -> CGSyncError | KeyboardInterrupt | None:
    """The CGSyncError or KeyboardInterrupt that `exc` wraps, if any."""
    for current in exception_chain(exc):
        if isinstance(current, CGSyncError | KeyboardInterrupt):
            return current
    return None


def one_line(exc: BaseException) -> str:
    cause = exc
    while isinstance(cause, PipelineStepFailed) and cause.__cause__ is not None:
        cause = cause.__cause__
    text = " ".join(str(cause).split())
    return text[:300] or type(cause).__name__


def duckdb_locked_message(conflict: BaseException) -> str:
    holder = re.search(r"\(PID (\d+)\)", str(conflict))
    by = f" (process {holder.group(1)})" if holder else ""
    return f"another process{by} has the lake's DuckDB file open: wait for it to end"
