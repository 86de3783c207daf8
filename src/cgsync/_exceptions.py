"""Errors that end a command, each with its documented exit code.

Every message is one line that names the thing to fix. Messages never contain secrets.
"""

from __future__ import annotations

from collections.abc import Iterator


class CGSyncError(Exception):
    """Base class: a failure the command line reports as one line and an exit code."""

    exit_code: int = 1


class ConfigError(CGSyncError):
    """Bad usage or configuration (exit 2)."""

    exit_code = 2


class ParametersRefusedError(ConfigError):
    """The API answered 400 or 422 to a request's parameters (exit 2)."""


class AuthenticationError(CGSyncError):
    """The token endpoint or the API refused the credentials (exit 3)."""

    exit_code = 3


class ApiError(CGSyncError):
    """The API or its data failed after retries (exit 4)."""

    exit_code = 4


class SyncLockedError(CGSyncError):
    """Another sync of the same pipeline is running (exit 5)."""

    exit_code = 5


class LakeNotSyncedError(CGSyncError):
    """`cgsync status` of a lake that was never synced (exit 6)."""

    exit_code = 6


EXIT_OK = 0
EXIT_INTERRUPTED = 130


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then each exception it wraps (its cause, else its context), each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
