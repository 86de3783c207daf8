"""cgsync: keep CustomerGauge survey data exactly in step in your own data lake."""

from cgsync._exceptions import (
    ApiError,
    AuthenticationError,
    CGSyncError,
    ConfigError,
    SyncLockedError,
)

__version__ = "0.1.0"

from cgsync.source import customergauge_source  # noqa: E402  (the source needs __version__)

__all__ = [
    "ApiError",
    "AuthenticationError",
    "CGSyncError",
    "ConfigError",
    "SyncLockedError",
    "__version__",
    "customergauge_source",
]
