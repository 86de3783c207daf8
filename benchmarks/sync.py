"""End-to-end measurements: the emulator in its own process, each measured run in a child.

Every measured run (the floor walk, `cgsync sync`, the replay) is a fresh child process in a
fresh directory: its wall time is taken around the whole process and its peak RSS comes from
`os.wait4`. API and token calls are counted by the emulator, so they are the server's view.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import httpx
import orjson

from benchmarks.untuned import ABLATED
from cgsync._endpoints import ENDPOINTS
from cgsync.emulator import settings as emulator_settings
from cgsync.settings import (
    DEFAULT_RESOURCES,
    ENV_API_URL,
    ENV_AUTH_URL,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
)

SEED = 7
TIMEZONE = "Europe/Amsterdam"
LATENCY_MS = 200
PARALLEL = 4
REPLAY_MAX_RECORDS = 1_000_000
"""Larger sizes are not recorded and replayed (10M records' pages would take about 15 GB, and
the recording walk ten minutes)."""
EMULATOR_START_TIMEOUT = 900.0
"""Seconds to wait for the emulator to answer (10M records take a while to generate)."""
POLL_SECONDS = 0.05
REPO = Path(__file__).resolve().parent.parent
_BANNER_URL = re.compile(r"API URL\s+(http://\S+)")
IMPORTED = ("dlt", "duckdb", "pyarrow", "httpx", "orjson")
"""The libraries a sync imports before it does anything: what a periodic run is judged by."""


class BenchmarkError(Exception):
    """A measured run failed or gave a wrong result; the message says which and why."""


@dataclass(frozen=True)
class Measurement:
    """One measured run."""

    seconds: float
    records: int
    peak_rss_bytes: int
    cpu_seconds: float
    """User plus system CPU time: on a busy machine it moves less than the wall time."""
    api_calls: int | None = None
    token_calls: int | None = None
    refresh_calls: int = 0
    """Pages of the sync's refresh windows: API calls a bare walk does not make."""
    lake_rows: int | None = None
    """Rows of the top tables (responses, non-responses) in the lake after the run."""
    removed: int = 0
    """Records a reconcile deleted from the lake."""

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Walk:
    """What a walk of every page found: the records and the requests it took."""

    records: int
    requests: int
    """Pages plus the final empty page of each endpoint: what a sync should cost."""
    endpoints: int


@dataclass(frozen=True)
class _Child:
    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    stdout: bytes


class EmulatorProcess:
    """`cgsync emulator` in a process of its own (so on a core of its own), and its admin API."""

    def __init__(self, records: int, workdir: Path, *, seed: int = SEED) -> None:
        self.records = records
        self._log = workdir / "emulator.log"
        self._argv = [
            sys.executable, "-m", "cgsync", "emulator", "--port", "0",
            "--records", str(records), "--seed", str(seed), "--timezone", TIMEZONE,
            "--speed", "0",  # the clock stands still: every run sees the same data
            # at today's date, as a live system is: a parallel load's head probe finds today
            "--start", datetime.now(UTC).replace(microsecond=0).isoformat(),
        ]  # fmt: skip
        self._process: subprocess.Popen[bytes] | None = None
        self._admin: httpx.Client | None = None
        self.base_url = ""

    @property
    def token_url(self) -> str:
        return self.base_url + emulator_settings.TOKEN_PATH

    def __enter__(self) -> Self:
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                self._argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self.base_url = self._wait_for_banner()
            self._admin = httpx.Client(base_url=self.base_url + "/_admin", timeout=60)
            self._wait_until_answering()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._admin is not None:
            self._admin.close()
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def stats(self) -> dict[str, int]:
        body = self._admin_call("GET", "/stats")
        return {"api_calls": body["api_calls"], "token_calls": body["token_calls"]}

    def set_faults(self, **faults: Any) -> None:
        self._admin_call("PUT", "/faults", json=faults)

    def clear_faults(self) -> None:
        self._admin_call("DELETE", "/faults")

    def expire_tokens(self) -> None:
        self._admin_call("POST", "/tokens/expire")

    def child_env(self) -> dict[str, str]:
        """The environment of a client child: the emulator's URLs and demo credentials."""
        return {
            **os.environ,
            ENV_CLIENT_ID: emulator_settings.DEFAULT_CLIENT_ID,
            ENV_CLIENT_SECRET: emulator_settings.DEFAULT_CLIENT_SECRET,
            ENV_AUTH_URL: self.token_url,
            ENV_API_URL: self.base_url,
        }

    def _admin_call(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self._admin is not None, "the emulator is not running"
        response = self._admin.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def _wait_for_banner(self) -> str:
        assert self._process is not None
        deadline = time.monotonic() + EMULATOR_START_TIMEOUT
        while time.monotonic() < deadline:
            if found := _BANNER_URL.search(self._log.read_text(errors="replace")):
                return found.group(1)
            if self._process.poll() is not None:
                raise BenchmarkError(
                    f"the emulator exited {self._process.returncode}: {_tail(self._log)}"
                )
            time.sleep(POLL_SECONDS)
        raise BenchmarkError(f"the emulator did not start within {EMULATOR_START_TIMEOUT:.0f} s")

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + EMULATOR_START_TIMEOUT
        while True:
            try:
                self.stats()
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise BenchmarkError(
                        f"the emulator at {self.base_url} does not answer"
                    ) from None
                time.sleep(POLL_SECONDS)


def floor_arguments(emulator: EmulatorProcess) -> list[str]:
    """The floor walk of the endpoints, page sizes and expansions a default sync requests."""
    arguments = ["--api-url", emulator.base_url, "--token-url", emulator.token_url]
    for resource in DEFAULT_RESOURCES:
        endpoint = ENDPOINTS[resource]
        arguments += ["--endpoint", f"{endpoint.path}:{','.join(endpoint.expansions)}"]
    # Both default resources have the same largest page, which is what the sync asks for.
    (per_page,) = {ENDPOINTS[resource].page_limit for resource in DEFAULT_RESOURCES}
    return arguments + ["--per-page", str(per_page)]


def record_pages(emulator: EmulatorProcess, pages: Path, workdir: Path) -> Walk:
    """Walk every page once, untimed, saving the bodies for the replay (and warming up)."""
    child = _run_child(
        [
            sys.executable,
            "-m",
            "benchmarks.floor",
            *floor_arguments(emulator),
            "--record",
            str(pages),
        ],
        workdir=workdir,
        env=emulator.child_env(),
    )
    result = orjson.loads(child.stdout)
    return Walk(result["records"], result["requests"], endpoints=len(DEFAULT_RESOURCES))


def measure_floor(emulator: EmulatorProcess, workdir: Path) -> tuple[Measurement, Walk]:
    """The bare httpx walk: parse JSON, follow the cursor, nothing else; and what it found."""
    before = emulator.stats()
    child = _run_child(
        [sys.executable, "-m", "benchmarks.floor", *floor_arguments(emulator)],
        workdir=workdir,
        env=emulator.child_env(),
    )
    result = orjson.loads(child.stdout)
    walk = Walk(result["records"], result["requests"], endpoints=len(DEFAULT_RESOURCES))
    return _measurement(child, result["records"], emulator, before), walk


def sync_supports(flag: str) -> bool:
    """Whether `cgsync sync` has `flag` (features still being built are measured when there)."""
    usage = subprocess.run(
        [sys.executable, "-m", "cgsync", "sync", "--help"],
        capture_output=True,
        env={**os.environ, "COLUMNS": "200"},  # Rich would otherwise wrap option names
        check=True,
    )
    return flag in usage.stdout.decode()


def measure_sync(
    emulator: EmulatorProcess,
    workdir: Path,
    *,
    extra_arguments: Sequence[str] = (),
    expire_token_at_call: int | None = None,
    without_tuning: str | None = None,
) -> tuple[Measurement, int]:
    """`cgsync sync` from scratch into DuckDB; returns the measurement and the forced expiries.

    With `expire_token_at_call`, the emulator's tokens are expired once the sync has made that
    many API calls, so the run shows what one forced expiry costs. With `without_tuning`, that
    step of the process tuning is left out (benchmarks.untuned).
    """
    command = ["-m", "cgsync"]
    if without_tuning is not None:
        command = ["-m", "benchmarks.untuned", "--without", without_tuning, "--"]
    argv = [
        sys.executable, *command, "sync", "--destination", "duckdb",
        "--pipelines-dir", str(workdir / "pipelines"), "--source-timezone", TIMEZONE,
        "--json", *extra_arguments,
    ]  # fmt: skip
    before = emulator.stats()
    with _token_expiry(emulator, before, expire_token_at_call) as expired:
        child = _run_child(argv, workdir=workdir, env=emulator.child_env())
    summary = orjson.loads(child.stdout)
    if summary.get("outcome") != "ok":
        raise BenchmarkError(f"cgsync sync ended {summary.get('outcome')}: {summary.get('error')}")
    resources = summary["resources"]
    records = sum(resource["records"] for resource in resources.values())
    refresh = sum(resource.get("refresh_pages", 0) for resource in resources.values())
    measured = dataclasses.replace(
        _measurement(child, records, emulator, before),
        refresh_calls=refresh,
        lake_rows=sum(summary["row_counts"].get(name, 0) for name in DEFAULT_RESOURCES),
        removed=sum(resource.get("removed", 0) for resource in resources.values()),
    )
    return measured, int(expired.is_set())


def measure_imports(workdir: Path) -> Measurement:
    """A bare interpreter that imports the sync's libraries (IMPORTED) and exits."""
    child = _run_child(
        [sys.executable, "-c", f"import {', '.join(IMPORTED)}"],
        workdir=workdir,
        env=dict(os.environ),
    )
    return Measurement(child.seconds, 0, child.peak_rss_bytes, child.cpu_seconds)


@dataclass(frozen=True)
class Replay:
    """One endpoint's recorded pages through the sync's code, and through `pyarrow.json` alone."""

    endpoint: str
    replay: Measurement
    parse: Measurement

    @property
    def share_of_parse_rate(self) -> float:
        """The replay's records/s as a share of pyarrow.json's on the same pages."""
        return self.replay.records_per_second / self.parse.records_per_second


def measure_replay(pages: Path, workdir: Path, endpoint: str) -> Replay:
    """Client-side processing alone: one endpoint's recorded pages through the sync's code,
    in-process, after `pyarrow.json` parsed the same files in the same process."""
    child = _run_child(
        [sys.executable, "-m", "benchmarks.replay", str(pages), "--workdir", str(workdir),
         "--endpoint", endpoint, "--source-timezone", TIMEZONE],
        workdir=workdir,
        env=dict(os.environ),
    )  # fmt: skip
    result = orjson.loads(child.stdout)
    if result["refresh_records"]:  # the recording holds no refresh window: nothing is read twice
        raise BenchmarkError(f"the {endpoint} replay read {result['refresh_records']:,} again")
    # The rates are the child's own: its interpreter start and imports are not processing.
    replay = Measurement(
        result["seconds"], result["records"], child.peak_rss_bytes, result["cpu_seconds"]
    )
    parsed = result["parse"]
    parse = Measurement(parsed["seconds"], parsed["records"], 0, parsed["cpu_seconds"])
    return Replay(endpoint, replay, parse)


def measure_peer(emulator: EmulatorProcess, workdir: Path) -> Measurement:
    """dlt's generic `rest_api` source over the same endpoints into DuckDB (benchmarks.peers);
    its records are the distinct rows it left in the lake's top tables."""
    before = emulator.stats()
    child = _run_child(
        [sys.executable, "-m", "benchmarks.peers", "--workdir", str(workdir)],
        workdir=workdir,
        env=emulator.child_env(),
    )
    result = orjson.loads(child.stdout)
    return dataclasses.replace(
        _measurement(child, result["read"], emulator, before), lake_rows=result["lake_rows"]
    )


def _measurement(
    child: _Child, records: int, emulator: EmulatorProcess, before: dict[str, int]
) -> Measurement:
    after = emulator.stats()
    return Measurement(
        seconds=child.seconds,
        records=records,
        peak_rss_bytes=child.peak_rss_bytes,
        cpu_seconds=child.cpu_seconds,
        api_calls=after["api_calls"] - before["api_calls"],
        token_calls=after["token_calls"] - before["token_calls"],
    )


@contextlib.contextmanager
def _token_expiry(
    emulator: EmulatorProcess, before: dict[str, int], at_call: int | None
) -> Iterator[threading.Event]:
    """Expire the tokens once `at_call` API calls were made after `before`; sets the event."""
    expired = threading.Event()
    finished = threading.Event()

    def watch() -> None:
        assert at_call is not None
        while not finished.wait(POLL_SECONDS):
            if emulator.stats()["api_calls"] - before["api_calls"] >= at_call:
                emulator.expire_tokens()
                expired.set()
                return

    watcher = threading.Thread(target=watch, daemon=True) if at_call is not None else None
    if watcher is not None:
        watcher.start()
    try:
        yield expired
    finally:
        finished.set()
        if watcher is not None:
            watcher.join()


def _run_child(argv: list[str], *, workdir: Path, env: dict[str, str]) -> _Child:
    """Run `argv` in `workdir` to its end; its wall time, peak RSS and stdout."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "stderr.log"
    # Children run in `workdir`: the benchmarks package must still be importable.
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))}
    started = time.perf_counter()
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            argv, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=stderr
        )
    try:
        assert process.stdout is not None
        stdout = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:
        process.kill()
        process.wait()
        raise
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    process.stdout.close()
    if process.returncode != 0:
        command = " ".join(argv[1:4])
        raise BenchmarkError(f"{command} exited {process.returncode}: {_tail(log)}")
    cpu_seconds = usage.ru_utime + usage.ru_stime
    return _Child(seconds, cpu_seconds, usage.ru_maxrss * 1024, stdout)  # maxrss: KiB on Linux


def _tail(log: Path, lines: int = 5) -> str:
    return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:]) or "no output"


@dataclass(frozen=True)
class LatencyRuns:
    """The sync with LATENCY_MS added to every page, sequential and (if it exists) parallel."""

    latency_ms: int
    sequential: Measurement
    forced_expiries: int
    """Token expiries forced during the sequential run (each costs a token and a replay)."""
    parallel: Measurement | None
    """None when `cgsync sync` has no `--parallel` yet."""


@dataclass(frozen=True)
class SizeResult:
    """Every measurement at one size, from one emulator."""

    records: int
    walk: Walk
    floor: Measurement
    sync: Measurement
    replays: tuple[Replay, ...]
    """Per endpoint; none above REPLAY_MAX_RECORDS."""
    latency: LatencyRuns | None
    periodic: Measurement | None = None
    """The next `cgsync sync` of the same lake, with nothing new at the API."""
    imports: Measurement | None = None
    """The bare imports of the sync's libraries, measured beside `periodic`."""
    full_refresh: Measurement | None = None
    """`cgsync sync --full-refresh` of the same lake: everything loaded again."""
    reconcile: Measurement | None = None
    """`cgsync sync --reconcile` of the same lake: everything walked again, nothing gone."""
    peer: Measurement | None = None
    """dlt's generic rest_api source over the same endpoints (with --peers)."""
    untuned: tuple[tuple[str, Measurement], ...] = ()
    """The initial sync without each step of the process tuning (with --tuning)."""


def benchmark_size(
    records: int,
    workdir: Path,
    *,
    with_latency: bool,
    parallel: bool,
    with_peer: bool = False,
    with_tuning: bool = False,
    say: Callable[[str], None],
) -> SizeResult:
    """Measure everything at `records` records against one emulator process."""
    say(f"{records:,} records: starting the emulator")
    with_replay = records <= REPLAY_MAX_RECORDS
    pages = workdir / "pages"
    with EmulatorProcess(records, workdir) as emulator:
        if with_replay:
            say(f"{records:,} records: recording the pages (untimed warm-up)")
            walk = record_pages(emulator, pages, workdir / "record")
        say(f"{records:,} records: floor walk")
        floor, floor_walk = measure_floor(emulator, workdir / "floor")
        if not with_replay:  # nothing recorded: the floor's walk sets the expected counts
            walk = floor_walk
        elif floor_walk != walk:
            raise BenchmarkError(f"the floor walk found {floor_walk}, the recording {walk}")
        say(f"{records:,} records: cgsync sync")
        sync, _ = measure_sync(emulator, workdir / "sync")
        _check_lake(sync, walk, "cgsync sync")
        say(f"{records:,} records: the next cgsync sync, nothing new, and the bare imports")
        periodic, _ = measure_sync(emulator, workdir / "sync")  # the same lake, synced
        if periodic.records:
            raise BenchmarkError(f"the periodic sync read {periodic.records:,} new records, not 0")
        _check_lake(periodic, walk, "the periodic sync", read=False)
        imports = measure_imports(workdir / "imports")
        say(f"{records:,} records: cgsync sync --full-refresh, then --reconcile, of that lake")
        full_refresh, _ = measure_sync(
            emulator, workdir / "sync", extra_arguments=["--full-refresh"]
        )
        _check_lake(full_refresh, walk, "the --full-refresh sync")
        reconcile, _ = measure_sync(emulator, workdir / "sync", extra_arguments=["--reconcile"])
        _check_lake(reconcile, walk, "the --reconcile sync")
        if reconcile.removed:
            raise BenchmarkError(f"the reconcile removed {reconcile.removed:,} listed records")
        latency = _latency_runs(emulator, walk, workdir, parallel, say) if with_latency else None
        untuned = []
        if with_tuning:
            for step in ABLATED:
                say(f"{records:,} records: cgsync sync without the tuning step {step}")
                run, _ = measure_sync(emulator, workdir / f"untuned-{step}", without_tuning=step)
                _check_lake(run, walk, f"the sync without {step}")
                untuned.append((step, run))
        peer = None
        if with_peer:
            say(f"{records:,} records: the peer, dlt's rest_api source")
            peer = measure_peer(emulator, workdir / "peer")
    replays = []
    if with_replay:
        for endpoint in DEFAULT_RESOURCES:
            say(f"{records:,} records: replaying the recorded {endpoint} pages")
            replays.append(measure_replay(pages, workdir / f"replay-{endpoint}", endpoint))
        replayed = sum(replay.replay.records for replay in replays)
        if replayed != walk.records or any(r.parse.records != r.replay.records for r in replays):
            raise BenchmarkError(
                f"the replay read {replayed:,} records, the floor walk {walk.records:,}"
            )
    return SizeResult(
        records, walk, floor, sync, tuple(replays), latency, periodic, imports,
        full_refresh, reconcile, peer, tuple(untuned),
    )  # fmt: skip


def _latency_runs(
    emulator: EmulatorProcess, walk: Walk, workdir: Path, parallel: bool, say: Callable[[str], None]
) -> LatencyRuns:
    emulator.set_faults(latency_ms=LATENCY_MS)
    try:
        say(f"{emulator.records:,} records: sync with {LATENCY_MS} ms per page, sequential")
        sequential, expiries = measure_sync(
            emulator, workdir / "latency-sequential", expire_token_at_call=walk.requests // 2
        )
        _check_lake(sequential, walk, "the sequential sync")
        parallel_run = None
        if parallel:
            say(f"{emulator.records:,} records: sync with {LATENCY_MS} ms per page, --parallel")
            parallel_run, _ = measure_sync(
                emulator,
                workdir / "latency-parallel",
                extra_arguments=["--parallel", str(PARALLEL)],
            )
            _check_lake(parallel_run, walk, "the parallel sync")
    finally:
        emulator.clear_faults()
    return LatencyRuns(LATENCY_MS, sequential, expiries, parallel_run)


def _check_records(measurement: Measurement, walk: Walk, what: str) -> None:
    if measurement.records != walk.records:
        raise BenchmarkError(
            f"{what} read {measurement.records:,} records, the floor walk {walk.records:,}"
        )


def _check_lake(measurement: Measurement, walk: Walk, what: str, *, read: bool = True) -> None:
    """The run read every record (when `read`) and left each in the lake exactly once."""
    if read:
        _check_records(measurement, walk, what)
    if measurement.lake_rows != walk.records:
        raise BenchmarkError(
            f"after {what} the lake holds {measurement.lake_rows} records, the API {walk.records:,}"
        )
