"""A lake: where a sync writes, the local working state that belongs to it, its locks, and the
CustomerGauge system it mirrors.

dlt keys a pipeline's local state by name alone, under one global directory, and a DuckDB
destination named without a path lands in the directory of the pipeline's first run. So two
lakes (two directories, destinations or datasets) under one pipeline name would share cursors.
Here the default DuckDB lake is `./cgsync.duckdb` of the directory cgsync runs in, every time,
and dlt's working directory of a lake is keyed by the destination, its location and the
dataset (`lake_pipelines_dir`). The lake itself stays the source of truth: a lost working
directory is rebuilt from it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.destination import Destination
from dlt.common.exceptions import DltException

from cgsync._dlt import (
    destination_kind,
    dlt_pipelines_dir,
    duckdb_file_destination,
    duckdb_lock_conflict,
)
from cgsync._errors import duckdb_locked_message, one_line
from cgsync._exceptions import ApiError, ConfigError, SyncLockedError
from cgsync._logs import log_event
from cgsync.settings import (
    DEFAULT_DATASET,
    DEFAULT_DESTINATION,
    DEFAULT_DUCKDB_FILE,
    DEFAULT_PIPELINE_NAME,
    DEFAULT_TABLE_FORMAT,
    LAKES_DIR,
)

# Credential fields that say where a lake is (never a secret, never a tuning knob).
_LOCATION_FIELDS = (
    "drivername",
    "host",
    "port",
    "database",
    "project_id",
    "location",
    "account",
    "warehouse",
    "catalog",
    "server_hostname",
    "http_path",
)
_DUCKDB_SUFFIX = ".duckdb"

TableFormat = Literal["delta", "iceberg"]
TABLE_FORMATS: tuple[TableFormat, ...] = ("delta", "iceberg")


@dataclass(frozen=True)
class Lake:
    """Where a sync writes: a dlt destination, a dataset in it, and the pipeline's name."""

    destination: str | Destination[Any, Any] = DEFAULT_DESTINATION
    """A dlt destination name (`duckdb` is `./cgsync.duckdb`), a `*.duckdb` path, or a dlt
    destination object."""
    dataset: str = DEFAULT_DATASET
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    pipelines_dir: str | None = None
    """Where the lakes' local working directories go (None: under dlt's own directory). Each
    lake gets its own directory in it, so lakes never share local state."""
    table_format: TableFormat = DEFAULT_TABLE_FORMAT
    """The table format on the filesystem destination (merge needs one): `delta` or
    `iceberg` (pyiceberg, with the catalog set in dlt's config). Ignored elsewhere."""

    def __post_init__(self) -> None:
        if self.table_format not in TABLE_FORMATS:
            raise ConfigError(
                f"unknown --table-format {self.table_format!r}: use {' or '.join(TABLE_FORMATS)}"
            )

    @property
    def destination_name(self) -> str:
        """The destination's name, never its credentials."""
        if isinstance(self.destination, str):
            return "duckdb" if self.destination.endswith(_DUCKDB_SUFFIX) else self.destination
        return str(self.destination.destination_name)

    def __repr__(self) -> str:
        return (
            f"Lake(destination={self.destination_name!r}, dataset={self.dataset!r}, "
            f"pipeline_name={self.pipeline_name!r})"
        )


def resolve_destination(destination: str | Destination[Any, Any]) -> Destination[Any, Any]:
    """The dlt destination of `destination`: `duckdb` is the file set in dlt's config
    (`destination.duckdb.credentials`), else `./cgsync.duckdb` in the current directory; a name
    ending in `.duckdb` is that file; other names are dlt's. DuckDB paths are made absolute
    here, so a lake never depends on where a pipeline first ran."""
    if not isinstance(destination, str):
        return destination
    if destination == "duckdb":
        destination = _configured_duckdb_file() or DEFAULT_DUCKDB_FILE
    if destination.endswith(_DUCKDB_SUFFIX):
        return duckdb_file_destination(Path(destination).absolute())
    try:
        resolved = Destination.from_reference(destination)
    except (DltException, ImportError) as exc:  # an unknown name, a missing extra
        raise ConfigError(f"cannot set up --destination {destination}: {one_line(exc)}") from None
    if resolved is None:
        raise ConfigError(f"unknown --destination {destination!r}: use e.g. duckdb or postgres")
    return resolved


def _configured_duckdb_file() -> str | None:
    """The DuckDB file named in dlt's config or environment, if any."""
    duckdb_destination = Destination.from_reference("duckdb")
    try:
        config = duckdb_destination.configuration(duckdb_destination.spec(), accept_partial=True)
    except DltException:
        return None
    database = getattr(getattr(config, "credentials", None), "database", None)
    return database if isinstance(database, str) and database.endswith(_DUCKDB_SUFFIX) else None


def lake_table_format(lake: Lake, destination: Destination[Any, Any]) -> TableFormat | None:
    """The lake's table format where its destination needs one (filesystem), else None."""
    return lake.table_format if destination_kind(destination) == "filesystem" else None


def lake_location(destination: Destination[Any, Any]) -> dict[str, Any]:
    """Where the destination's data is: its bucket, file, or host, port and database. Never a
    secret; what cannot be resolved yet (missing configuration) is left out."""
    try:
        config = destination.configuration(destination.spec(), accept_partial=True)
    except DltException:
        return {}
    location: dict[str, Any] = {}
    bucket_url = getattr(config, "bucket_url", None)
    if bucket_url:
        location["bucket_url"] = str(bucket_url)
    credentials = getattr(config, "credentials", None)
    for name in _LOCATION_FIELDS:
        value = getattr(credentials, name, None)
        if isinstance(value, str | int) and value != "":
            location[name] = value
    database = location.get("database")
    if destination_kind(destination) == "duckdb" and database not in (None, ":memory:"):
        location["database"] = str(Path(str(database)).absolute())
    return location


def lake_pipelines_dir(lake: Lake, destination: Destination[Any, Any]) -> Path:
    """dlt's pipelines directory for this lake alone: keyed by destination, location, dataset."""
    kind = destination_kind(destination)
    identity = repr((kind, sorted(lake_location(destination).items()), lake.dataset))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{kind}-{lake.dataset}")[:60]
    base = Path(lake.pipelines_dir) if lake.pipelines_dir else dlt_pipelines_dir()
    return base / LAKES_DIR / f"{readable}-{digest}"


def build_pipeline(lake: Lake, *, pipelines_dir: Path | None = None) -> dlt.Pipeline:
    """The dlt pipeline that writes to `lake`, with the lake's own local working directory
    (or `pipelines_dir`, e.g. a temporary one that only reads the lake)."""
    destination = resolve_destination(lake.destination)
    try:
        return dlt.pipeline(
            pipeline_name=lake.pipeline_name,
            destination=destination,
            dataset_name=lake.dataset,
            pipelines_dir=str(pipelines_dir or lake_pipelines_dir(lake, destination)),
        )
    except DltException as exc:  # a missing extra, a bad pipeline name
        raise ConfigError(
            f"cannot set up --destination {lake.destination_name}: {one_line(exc)}"
        ) from None


def duckdb_file(lake: Lake) -> Path | None:
    """The lake's DuckDB file (None: not a DuckDB lake, or one dlt places itself)."""
    destination = resolve_destination(lake.destination)
    if destination_kind(destination) != "duckdb":
        return None
    database = lake_location(destination).get("database")
    return Path(database) if isinstance(database, str) and database != ":memory:" else None


@contextmanager
def local_lock(pipeline: dlt.Pipeline) -> Iterator[Path]:
    """Hold the OS file lock of the lake's local working directory, or raise SyncLockedError.

    It keeps two syncs on this machine out of one working directory, on every destination. The
    lock goes with the process: a killed sync leaves none behind.
    """
    directory = Path(pipeline.pipelines_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f".{pipeline.pipeline_name}.cgsync.lock"
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncLockedError(
                f"another sync of this lake is running on this machine (lock {path})"
            ) from None
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class DestinationLock:
    """The lake's lock in the destination itself, held by a connection kept open for the sync
    (`destination_lock`)."""

    def __init__(self, pipeline: dlt.Pipeline) -> None:
        self._kind = destination_kind(pipeline.destination)
        self._pipeline = pipeline
        self._client: Any = None

    def acquire(self) -> None:
        """Take the lock; raise SyncLockedError at once if another sync holds it."""
        if self._kind not in ("postgres", "duckdb"):
            return
        try:
            client = self._pipeline.sql_client()
            client.open_connection()
        except Exception as exc:  # noqa: BLE001 - whatever the driver raises becomes one line
            conflict = duckdb_lock_conflict(exc) if self._kind == "duckdb" else None
            if conflict is not None:
                raise SyncLockedError(duckdb_locked_message(conflict)) from None
            if isinstance(exc, ConfigFieldMissingException):
                raise ConfigError(f"destination configuration: {one_line(exc)}") from None
            raise ApiError(f"cannot connect to the lake on {self._kind}: {one_line(exc)}") from None
        self._client = client
        if self._kind == "postgres":
            key = f"cgsync:{self._pipeline.dataset_name}"
            rows = client.execute_sql("SELECT pg_try_advisory_lock(hashtext(%s))", key)
            if not rows or not rows[0][0]:
                self.release()
                raise SyncLockedError(
                    f"another sync of dataset {self._pipeline.dataset_name!r} holds its lock in "
                    "PostgreSQL (an advisory lock): wait for it to end"
                )

    def release(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            client.close_connection()

    def checkpoint_duckdb(self) -> None:
        """DuckDB: write what the sync's loads left in memory (the write-ahead log's blocks,
        the marks of deleted rows) into the database file on the lock's connection, so that the
        memory limit is free again for the queries that follow. After a 10M-record full
        refresh they held 85 of the 96 MB, and counting the open non-responses ran out."""
        if self._kind != "duckdb" or self._client is None:
            return
        try:
            self._client.execute_sql("CHECKPOINT")
        except Exception as exc:  # noqa: BLE001 - the data is committed: the sync goes on
            reason = one_line(exc)
            log_event(
                "duckdb_checkpoint_skipped",
                "DuckDB did not checkpoint before the counts (%s); they may need more memory",
                reason,
                level=logging.WARNING,
                reason=reason,
            )

    def restart_duckdb(self) -> None:
        """Start the DuckDB database of the lake afresh in this process: close the lock's
        connection, the last one open once dlt's load is over, and take the lock again.

        DuckDB keeps the marks of a DELETE that ran out of memory until its database closes:
        every later DELETE of that table, a merge's included, fails "Conflict on tuple
        deletion!" until then (seen after a 10M-record full refresh). Between the two, another
        process could take the file's lock: then SyncLockedError, and the pending load stays
        for the next sync.
        """
        if self._kind != "duckdb" or self._client is None:
            return
        self.release()
        self.acquire()


@contextmanager
def destination_lock(pipeline: dlt.Pipeline) -> Iterator[DestinationLock]:
    """Hold the lake's lock in the destination itself, so that syncs from other machines (or
    other local directories) never interleave; raise SyncLockedError at once if it is held.

    - PostgreSQL: a session advisory lock named by the dataset, on a connection held open for
      the sync (the server frees it when the connection ends, also after a kill).
    - DuckDB: the file's own lock, held by a connection kept open for the sync; dlt's own
      connections in this process share that database instance.
    - Others (filesystem, warehouses): none; run one writer (docs/sync.md).
    """
    lock = DestinationLock(pipeline)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()


@dataclass(frozen=True)
class System:
    """The CustomerGauge system a lake mirrors: its API host and the client id (no secret)."""

    api_host: str
    client_id: str

    @classmethod
    def of(cls, api_url: str, client_id: str) -> System:
        return cls(api_host=urlsplit(api_url).netloc or api_url, client_id=client_id)

    @classmethod
    def stored(cls, state: Mapping[str, Any] | None) -> System | None:
        if not state or not state.get("api_host"):
            return None
        return cls(api_host=str(state["api_host"]), client_id=str(state.get("client_id", "")))

    def as_state(self) -> dict[str, str]:
        return {"api_host": self.api_host, "client_id": self.client_id}

    def __str__(self) -> str:
        return f"{self.api_host} (client id {self.client_id})"


def check_system(stored: System | None, current: System, *, new_client_id: bool) -> None:
    """Refuse a sync of another system into a lake: ConfigError, naming both."""
    if stored is None or stored == current:
        return
    if stored.api_host != current.api_host:
        raise ConfigError(
            f"this lake mirrors {stored}, not {current}: sync another system into another "
            "lake (--destination or --dataset)"
        )
    if not new_client_id:
        raise ConfigError(
            f"this lake mirrors {stored}, not client id {current.client_id}: if the "
            "credentials of the same system were rotated, run once with --new-client-id"
        )
