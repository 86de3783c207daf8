"""Constants of the sync: hosts, environment variables, defaults and assumptions, kept in one place."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

# Hosts. A system's region is the middle of its login URL `cvm.{region}.customergauge.com`.
REGIONS: tuple[str, ...] = ("eu", "us", "au")
DEFAULT_REGION = "eu"
AUTH_URL_TEMPLATE = "https://auth.{region}.customergauge.com/oauth2/token"
API_URL_TEMPLATE = "https://api.{region}.customergauge.com"

# The dlt source's name: its section in dlt's config (`sources.customergauge.client_id`) and the
# key of its state in the lake.
SOURCE_NAME = "customergauge"

# Environment variables (command-line flags override them).
ENV_CLIENT_ID = "CUSTOMERGAUGE_CLIENT_ID"
ENV_CLIENT_SECRET = "CUSTOMERGAUGE_CLIENT_SECRET"
ENV_REGION = "CUSTOMERGAUGE_REGION"
ENV_AUTH_URL = "CUSTOMERGAUGE_AUTH_URL"
ENV_API_URL = "CUSTOMERGAUGE_API_URL"

# Query parameters. The CGID and outbound filter names are not published by the vendor:
# these are assumptions (docs/contracts.md §1), kept here so that one edit fixes them.
PER_PAGE_PARAM = "per_page"
CURSOR_PARAM = "cursor"
EXPANSION_PARAM = "with[]"
PERIOD_FIELD_PARAM = "period[field]"
PERIOD_START_PARAM = "period[start]"
PERIOD_END_PARAM = "period[end]"
CGID_FILTER_PARAM = "number_customergauge"
OUTBOUND_FILTER_PARAM = "outbound_filter"

# Record shapes. Failure statuses are an assumption (docs/contracts.md §1).
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
FAILURE_STATUSES: frozenset[str] = frozenset({"bounced", "undeliverable", "blocked"})
PRIMARY_KEY = "number_customergauge"
SYNCED_AT_COLUMN = "_cgsync_synced_at"
# A segment property's column in the main tables: `properties__<snake_case(field)>`, text.
PROPERTY_PREFIX = "properties__"
DEFAULT_SOURCE_TIMEZONE = "UTC"

# The lake.
DEFAULT_DATASET = "customergauge"
DEFAULT_PIPELINE_NAME = "cgsync"
# Where a lake is unless `--destination` says: DuckDB, in DEFAULT_DUCKDB_FILE.
DEFAULT_DESTINATION = "duckdb"
# How a lake on `--destination filesystem` stores its tables: delta or iceberg.
DEFAULT_TABLE_FORMAT: Final = "delta"
# `--destination duckdb` is this file in the directory cgsync runs in, every time.
DEFAULT_DUCKDB_FILE = "cgsync.duckdb"
# Each lake's local working state lives in its own folder of this one, under dlt's pipelines
# directory (or --pipelines-dir), keyed by the destination, its location and the dataset.
LAKES_DIR = "cgsync-lakes"
# The lake's own record of its syncs (cgsync status reads it), beside the data tables.
RUNS_TABLE = "_cgsync_runs"
# Values the sync could not read as their column's type (the column holds NULL): their text.
REJECTED_VALUES_TABLE = "_cgsync_rejected_values"
# cgsync's own tables begin so; they are not data tables (row counts, views, the report).
OWN_TABLE_PREFIX = "_cgsync_"
RECENT_RUNS = 10
# Rows of the run history that the lake could not take yet, in the lake's working directory.
UNRECORDED_RUNS_FILE = "cgsync_unrecorded_runs.json"
# DuckDB's settings in `cgsync sync` unless configured: memory bounded (it spills to disk beyond
# it), one thread (the other core parses pages). Not lower: at 32 MB a full refresh over a
# 3M-record lake ran out of memory (96 MB: 151 s), though 32 MB saves about 60 MB at 1M.
DUCKDB_MEMORY_LIMITS = ("96MB", "192MB", "384MB")
"""`cgsync sync`'s DuckDB memory limit, and the steps it goes up to when a load runs out of it
(a full refresh of a big lake needs more than an initial load)."""
DUCKDB_GLOBAL_CONFIG = {"memory_limit": DUCKDB_MEMORY_LIMITS[0], "threads": 1}
ENV_DUCKDB_GLOBAL_CONFIG = "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG"
# glibc's malloc in `cgsync sync`: arenas, and the size from which blocks are mapped (and so
# handed back when freed) unless MALLOC_ARENA_MAX or MALLOC_MMAP_THRESHOLD_ is set.
MALLOC_ARENAS = 2
MALLOC_MMAP_THRESHOLD = 256 * 1024
# Destinations whose load job is one local, all-or-nothing statement: never reported failed
# after it committed, so dlt runs it twice only in a package a killed sync left behind.
ATOMIC_LOCAL_DESTINATIONS = frozenset({"duckdb"})
DEFAULT_RESOURCES: tuple[str, ...] = ("responses", "non_responses")

# Sync windows and checkpoints.
DEFAULT_REFRESH_WINDOW = timedelta(hours=72)
DEFAULT_V6_LOOKBACK = timedelta(days=30)
# DuckDB stores one big insert far cheaper per row than several small ones: the 1M replay loaded
# in 30 s with 250-page checkpoints against 42 s with 100-page ones, at the same peak memory.
DEFAULT_CHECKPOINT_PAGES = 250
# A checkpoint also ends this long after it started: behind a slow API, the data and cursors
# reach the lake every few seconds, and dlt loads one checkpoint while the next is being read.
DEFAULT_CHECKPOINT_SECONDS = 10.0
# Windows walked side by side in an initial load or full refresh (v7): one, unless asked.
DEFAULT_PARALLEL = 1
# Pages a walk reads ahead of the sync, across checkpoints too (each holds its body and Arrow).
READ_AHEAD_PAGES = 8
# Pages each window of a parallel backfill reads ahead (K windows per resource walk at once).
BACKFILL_READ_AHEAD_PAGES = 4

# Tokens live one hour; renew this long before `expires_in` runs out (at most a tenth of it).
TOKEN_RENEW_MARGIN = timedelta(seconds=60)

# HTTP timeouts (seconds) and retries: exponential backoff with full jitter, bounded twice.
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
RETRY_MAX_ATTEMPTS = 8
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 30.0
RETRY_MAX_TOTAL = 300.0

# `cgsync sync --log-format`: progress and a table for people, or JSON lines for aggregators.
LOG_FORMATS: tuple[str, ...] = ("human", "json")
DEFAULT_LOG_FORMAT = "human"
