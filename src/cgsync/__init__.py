"""cgsync: keep CustomerGauge survey data exactly in step in your own data lake."""

from cgsync._exceptions import (
    ApiError,
    AuthenticationError,
    CGSyncError,
    ConfigError,
    SyncLockedError,
)

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from cgsync.source import customergauge_source


def __getattr__(name: str) -> Any:
    # The source imports dlt (seconds, tens of MB): load it on first use, so that the emulator
    # and the report never pay for it.
    if name == "customergauge_source":
        from cgsync.source import customergauge_source

        return customergauge_source
    raise AttributeError(f"module 'cgsync' has no attribute {name!r}")

__all__ = [
    "ApiError",
    "AuthenticationError",
    "CGSyncError",
    "ConfigError",
    "SyncLockedError",
    "__version__",
    "customergauge_source",
]
