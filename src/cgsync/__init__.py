"""cgsync: keep CustomerGauge survey data exactly in step in your own data lake."""

from cgsync._exceptions import (
    ApiError,
    AuthenticationError,
    CGSyncError,
    ConfigError,
    SyncLockedError,
)

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthenticationError",
    "CGSyncError",
    "ConfigError",
    "SyncLockedError",
    "__version__",
]
