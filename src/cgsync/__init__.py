"""cgsync: keep CustomerGauge survey data exactly in step in your own data lake."""

from typing import TYPE_CHECKING

from cgsync._exceptions import (
    ApiError,
    AuthenticationError,
    CGSyncError,
    ConfigError,
    LakeNotSyncedError,
    SyncLockedError,
)
from cgsync._lazy import lazy_attributes

__version__ = "0.1.0"

if TYPE_CHECKING:
    from cgsync._config import SyncOptions
    from cgsync._lake import Lake
    from cgsync._runner import run_sync
    from cgsync._status import read_status
    from cgsync._summary import ResourceSummary, SyncSummary
    from cgsync._walks import Filters
    from cgsync.source import customergauge_source

# Each of these imports dlt (seconds, tens of MB): they load on first use, so that the
# emulator, the report and `--help` never pay for it.
_LAZY = {
    "customergauge_source": "cgsync.source",
    "run_sync": "cgsync._runner",
    "read_status": "cgsync._status",
    "SyncOptions": "cgsync._config",
    "SyncSummary": "cgsync._summary",
    "ResourceSummary": "cgsync._summary",
    "Lake": "cgsync._lake",
    "Filters": "cgsync._walks",
}


__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "ApiError",
    "AuthenticationError",
    "CGSyncError",
    "ConfigError",
    "Filters",
    "Lake",
    "LakeNotSyncedError",
    "ResourceSummary",
    "SyncLockedError",
    "SyncOptions",
    "SyncSummary",
    "__version__",
    "customergauge_source",
    "read_status",
    "run_sync",
]
