"""The results: one row per measured run, the issue's targets, the machine; as Rich and Markdown."""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.table import Table

from benchmarks.sync import IMPORTED, PARALLEL, LatencyRuns, Measurement, Replay, SizeResult

COLUMNS = (
    "records", "run", "wall s", "CPU s", "records/s", "ratio", "peak RSS MB", "API calls",
    "token calls",
)  # fmt: skip
TARGET_COLUMNS = ("target", "measured", "met")

ISSUE = "Targets of issue #15"
FLOOR_RATIO_MAX = 1.15
RSS_MAX_MB = 450
RSS_GROWTH_MAX = 1.3
PARSE_SHARE_MIN = 0.5
"""The replay's records/s as a share of pyarrow.json's parse of the same pages."""
LATENCY_RATIO_MAX = 1.1
PARALLEL_SPEEDUP_MIN = 3.0
PARALLEL_PROBE_CALLS = 3
"""Head probes of a parallel load when the API's clock and the local one agree on the day."""
PERIODIC_IMPORTS_RATIO_MAX = 1.3

NOT_IMPLEMENTED = "n/a (not implemented)"
RUNS = {
    "floor": "floor: bare httpx walk",
    "sync": "cgsync sync",
    "periodic": "next sync, nothing new",
    "imports": "bare imports: " + ", ".join(IMPORTED),
    "full_refresh": "sync --full-refresh, same lake",
    "reconcile": "sync --reconcile, same lake",
    "sequential": "sync, {ms} ms/page",
    "parallel": "sync, {ms} ms/page, --parallel {workers}",
    "replay": "replay {endpoint}: parse, flatten, Arrow, load",
    "parse": "pyarrow.json parse alone, {endpoint}",
    "peer": "peer: dlt rest_api source, merge into DuckDB",
    "untuned": "sync without tuning step {step}",
}
LEGEND = (
    "floor: a bare httpx walk of every page that only parses JSON and follows the cursor. "
    "cgsync sync: end to end into DuckDB, from a fresh directory (process start included). "
    "ms/page: the emulator adds that latency to every page; the sequential run also has the "
    "tokens expired once halfway. replay: the recorded pages through the sync's code "
    "in-process (ApiClient, records_to_arrow, dlt into DuckDB), one endpoint at a time, no "
    "network; its time excludes the interpreter start. pyarrow.json parse alone: the same page "
    "files read and parsed by pyarrow.json in the replay's process, the yardstick of the "
    "replay. next sync, nothing new: cgsync sync again into the same lake, the API unchanged, "
    "beside an interpreter that only imports the sync's libraries. --full-refresh and "
    "--reconcile run on that lake too. peer: dlt's generic rest_api source configured for the "
    "same endpoints (cursor paginator, merge on the CGID into DuckDB); its records/s counts "
    "what it read, and the ratio says whether the lake holds every record. without the tuning "
    "step: the initial sync with that step of cgsync._tuning left out. CPU s: user + "
    "system time of that process, which a busy machine inflates less than the wall time. API "
    "and token calls are counted by the emulator."
)
_MB = 1_000_000
_REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    """One target and how this run did; `met` is None when it was not measured."""

    name: str
    measured: str
    met: bool | None

    @property
    def verdict(self) -> str:
        return {True: "yes", False: "NO", None: "-"}[self.met]


def measurement_rows(results: Sequence[SizeResult]) -> list[tuple[str, ...]]:
    """The rows of the measurements table, in COLUMNS order."""
    rows = []
    for result in results:
        sync_ratio = f"{_ratio(result.sync, result.floor):.2f}x floor"
        rows.append(_row(result, RUNS["floor"], result.floor, "1.00x floor"))
        rows.append(_row(result, RUNS["sync"], result.sync, sync_ratio))
        if result.periodic is not None and result.imports is not None:
            ratio = f"{_ratio(result.periodic, result.imports):.2f}x bare imports"
            rows.append(_row(result, RUNS["periodic"], result.periodic, ratio))
            rows.append(_row(result, RUNS["imports"], result.imports, "1.00x bare imports"))
        for name, again in (("full_refresh", result.full_refresh), ("reconcile", result.reconcile)):
            if again is not None:
                ratio = f"{_ratio(again, result.sync):.2f}x cgsync sync"
                rows.append(_row(result, RUNS[name], again, ratio))
        if result.latency is not None:
            rows += _latency_rows(result, result.latency)
        for replay in result.replays:
            share = f"{replay.share_of_parse_rate:.0%} of pyarrow.json"
            rows.append(
                _row(result, RUNS["replay"].format(endpoint=replay.endpoint), replay.replay, share)
            )
            rows.append(
                _row(
                    result,
                    RUNS["parse"].format(endpoint=replay.endpoint),
                    replay.parse,
                    "",
                    rss=False,
                )
            )
        if result.peer is not None:
            rows.append(_row(result, RUNS["peer"], result.peer, _peer_ratio(result, result.peer)))
        for step, untuned in result.untuned:
            ratio = (
                f"{_ratio(untuned, result.sync):.2f}x wall, "
                f"{_ratio(untuned, result.sync, by='peak_rss_bytes'):.2f}x RSS of cgsync sync"
            )
            rows.append(_row(result, RUNS["untuned"].format(step=step), untuned, ratio))
    return rows


def _peer_ratio(result: SizeResult, peer: Measurement) -> str:
    ratio = f"{_ratio(peer, result.sync):.2f}x cgsync sync"
    missing = result.walk.records - (peer.lake_rows or 0)
    if missing == 0:
        return ratio + ", every record"
    return ratio + f", {missing:,} of {result.walk.records:,} records missing"


def _latency_rows(result: SizeResult, latency: LatencyRuns) -> list[tuple[str, ...]]:
    ms = latency.latency_ms
    sequential = _row(
        result,
        RUNS["sequential"].format(ms=ms),
        latency.sequential,
        f"{_latency_ratio(result, latency):.2f}x pages x {ms} ms",
        forced_expiries=latency.forced_expiries,
    )
    label = RUNS["parallel"].format(ms=ms, workers=PARALLEL)
    if latency.parallel is None:
        missing = ("-",) * (len(COLUMNS) - 3)
        return [sequential, (f"{result.records:,}", label, NOT_IMPLEMENTED, *missing)]
    speedup = f"{_ratio(latency.sequential, latency.parallel):.1f}x faster than sequential"
    return [sequential, _row(result, label, latency.parallel, speedup)]


def evaluate_targets(results: Sequence[SizeResult]) -> list[Target]:
    """The issue's targets, each judged on this run's measurements."""
    targets = [
        Target(
            f"end to end at {result.records:,} within {FLOOR_RATIO_MAX}x of the floor",
            f"{_ratio(result.sync, result.floor):.2f}x",
            _ratio(result.sync, result.floor) <= FLOOR_RATIO_MAX,
        )
        for result in results
    ]
    targets += _memory_targets(results)
    targets.append(_lifecycle_target(results))
    targets += _processing_targets(results)
    return (
        targets
        + _periodic_targets(results)
        + _call_targets(_sync_runs(results))
        + _parallel_call_target(results)
        + _latency_targets(results)
    )


def _memory_runs(result: SizeResult) -> list[Measurement]:
    """Every run of cgsync's code at one size (the peer is not ours)."""
    runs = [result.sync, *(replay.replay for replay in result.replays)]
    runs += [run for run in (result.periodic, result.full_refresh, result.reconcile) if run]
    if (latency := result.latency) is not None:
        runs += [run for run in (latency.sequential, latency.parallel) if run]
    return runs


def _memory_targets(results: Sequence[SizeResult]) -> list[Target]:
    """Flat memory: every run within a small container's bound, and the largest size's peak
    close to the smallest's."""
    peaks = {
        result.records: max(r.peak_rss_bytes for r in _memory_runs(result)) for result in results
    }
    peak = max(peaks.values())
    targets = [
        Target(
            f"peak RSS of every run at most {RSS_MAX_MB} MB",
            f"{peak / _MB:,.0f} MB at most",
            peak <= RSS_MAX_MB * _MB,
        )
    ]
    smallest, largest = min(peaks), max(peaks)
    if largest != smallest:
        growth = peaks[largest] / peaks[smallest]
        targets.append(
            Target(
                f"peak RSS at {largest:,} within {RSS_GROWTH_MAX}x of {smallest:,}",
                f"{growth:.2f}x ({peaks[largest] / _MB:,.0f} / {peaks[smallest] / _MB:,.0f} MB)",
                growth <= RSS_GROWTH_MAX,
            )
        )
    return targets


def _lifecycle_target(results: Sequence[SizeResult]) -> Target:
    """The initial load, the periodic run, --full-refresh and --reconcile, each checked exact
    (every record read, each in the lake once) by the benchmark as it ran."""
    sizes = [
        result.records
        for result in results
        if None not in (result.periodic, result.full_refresh, result.reconcile)
    ]
    return Target(
        "initial load, periodic run, --full-refresh and --reconcile all exact on DuckDB",
        "at " + ", ".join(f"{size:,}" for size in sizes) if sizes else "not run",
        bool(sizes) if sizes else None,
    )


def _processing_targets(results: Sequence[SizeResult]) -> list[Target]:
    """Per record kind: the replay's rate as a share of pyarrow.json's, the worst size's."""
    by_endpoint: dict[str, list[Replay]] = {}
    for result in results:
        for replay in result.replays:
            by_endpoint.setdefault(replay.endpoint, []).append(replay)
    targets = []
    for endpoint, replays in by_endpoint.items():
        worst = min(replays, key=lambda replay: replay.share_of_parse_rate)
        targets.append(
            Target(
                f"replay of {endpoint} at least {PARSE_SHARE_MIN:.0%} of pyarrow.json's parse rate",
                f"{worst.share_of_parse_rate:.0%} ({worst.replay.records_per_second:,.0f} of "
                f"{worst.parse.records_per_second:,.0f} records/s at {worst.replay.records:,})",
                worst.share_of_parse_rate >= PARSE_SHARE_MIN,
            )
        )
    return targets or [Target("replay against pyarrow.json's parse rate", "not run", None)]


def _periodic_targets(results: Sequence[SizeResult]) -> list[Target]:
    """A periodic run with nothing new costs little more than importing its libraries."""
    ratios = [
        _ratio(result.periodic, result.imports)
        for result in results
        if result.periodic is not None and result.imports is not None
    ]
    if not ratios:
        return []
    worst = max(ratios)
    return [
        Target(
            f"a sync with nothing new within {PERIODIC_IMPORTS_RATIO_MAX}x of its bare imports",
            f"{worst:.2f}x at most",
            worst <= PERIODIC_IMPORTS_RATIO_MAX,
        )
    ]


def _sync_runs(results: Sequence[SizeResult]) -> list[tuple[SizeResult, Measurement, int]]:
    """Every sequential `cgsync sync` run with its size and the token expiries forced during it."""
    runs = [(result, result.sync, 0) for result in results]
    for result in results:
        if (latency := result.latency) is not None:
            runs.append((result, latency.sequential, latency.forced_expiries))
    return runs


def _parallel_call_target(results: Sequence[SizeResult]) -> list[Target]:
    """A `--parallel K` initial load pays, per endpoint, PARALLEL_PROBE_CALLS requests to find
    the head and cut the windows, and per window at most one partial page more than a single
    walk would and the empty page that ends it (docs/sync.md, "Parallel backfill")."""
    misses, runs = [], 0
    for result in results:
        if result.latency is None or (parallel := result.latency.parallel) is None:
            continue
        runs += 1
        most = result.walk.requests + result.walk.endpoints * (PARALLEL_PROBE_CALLS + 2 * PARALLEL)
        most += parallel.refresh_calls
        assert parallel.api_calls is not None
        if not result.walk.requests <= parallel.api_calls <= most:
            misses.append(f"{parallel.api_calls:,} for at most {most:,} at {result.records:,}")
    if not runs:
        return []
    name = (
        f"--parallel {PARALLEL} API calls <= pages + 1 + ({PARALLEL_PROBE_CALLS} probes + "
        f"2 x {PARALLEL} windows) per endpoint + refresh pages"
    )
    return [Target(name, "; ".join(misses) or f"all {runs} exact", not misses)]


def _call_targets(syncs: list[tuple[SizeResult, Measurement, int]]) -> list[Target]:
    """API calls = pages + 1 per endpoint, plus the pages of the refresh windows (the sync
    reports them); token calls = 1 per hour of running + 1 per forced expiry. A forced expiry also costs one rejected (401) call per walk with a request in
    flight: at least one, at most one per endpoint, since the walks run side by side."""
    api_misses, token_misses = [], []
    for result, sync, expiries in syncs:
        fewest = result.walk.requests + sync.refresh_calls + expiries
        most = result.walk.requests + sync.refresh_calls + expiries * result.walk.endpoints
        expected_tokens = 1 + int(sync.seconds // 3600) + expiries
        assert sync.api_calls is not None and sync.token_calls is not None
        if not fewest <= sync.api_calls <= most:
            expected = f"{fewest:,}" if fewest == most else f"{fewest:,}-{most:,}"
            api_misses.append(f"{sync.api_calls:,} for {expected} at {result.records:,}")
        if sync.token_calls != expected_tokens:
            token_misses.append(f"{sync.token_calls} for {expected_tokens} at {result.records:,}")
    runs = f"all {len(syncs)} syncs exact"
    return [
        Target("API calls = pages + 1 per endpoint + refresh pages (+ a forced expiry's 401s)",
               "; ".join(api_misses) or runs, not api_misses),
        Target("token calls = 1 per hour of running + 1 per forced expiry",
               "; ".join(token_misses) or runs, not token_misses),
    ]  # fmt: skip


def _latency_targets(results: Sequence[SizeResult]) -> list[Target]:
    targets = []
    for result in results:
        if (latency := result.latency) is None:
            continue
        ms, where = latency.latency_ms, f"{latency.latency_ms} ms/page at {result.records:,}"
        ratio = _latency_ratio(result, latency)
        targets.append(
            Target(
                f"{where}: sequential within {LATENCY_RATIO_MAX}x of pages x {ms} ms",
                f"{ratio:.2f}x",
                ratio <= LATENCY_RATIO_MAX,
            )
        )
        name = f"{where}: --parallel {PARALLEL} at least {PARALLEL_SPEEDUP_MIN:g}x faster"
        if latency.parallel is None:
            targets.append(Target(name, NOT_IMPLEMENTED, None))
        else:
            speedup = _ratio(latency.sequential, latency.parallel)
            targets.append(Target(name, f"{speedup:.1f}x", speedup >= PARALLEL_SPEEDUP_MIN))
    return targets or [Target("runs with added latency per page", "not run", None)]


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "cpu": f"{_cpu_model()}, {os.cpu_count()} cores",
        "memory": f"{_memory_gb():.1f} GB",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "installed": _installed(),
        "cgsync commit": _commit(),
        "load average (1/5/15 min) at the end": load,
    }


def rich_tables(
    rows: Sequence[tuple[str, ...]], targets: Sequence[Target], title: str
) -> list[Table]:
    measurements = Table(title=title, caption=LEGEND)
    for column in COLUMNS:
        measurements.add_column(column, justify="left" if column in ("run", "ratio") else "right")
    for row in rows:
        measurements.add_row(*row)
    goals = Table(title=ISSUE)
    for column in TARGET_COLUMNS:
        goals.add_column(column)
    for target in targets:
        style = {True: "green", False: "bold red", None: "dim"}[target.met]
        goals.add_row(target.name, target.measured, f"[{style}]{target.verdict}[/]")
    return [measurements, goals]


def markdown(
    rows: Sequence[tuple[str, ...]],
    targets: Sequence[Target],
    facts: dict[str, str],
    command: str,
    *,
    failure: str | None = None,
) -> str:
    """The results file; `failure` says why the run stopped before its last size."""
    stopped = [f"**The run stopped: {failure}** The rows are the sizes measured before it.", ""]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` (see docs/benchmarks.md). Edit nothing here by hand.",
        "",
        *(stopped if failure else []),
        *[f"- {name}: {value}" for name, value in facts.items()],
        "",
        *_markdown_table(COLUMNS, rows),
        "",
        LEGEND,
        "",
        f"## {ISSUE}",
        "",
        *_markdown_table(TARGET_COLUMNS, [(t.name, t.measured, t.verdict) for t in targets]),
    ]
    return "\n".join(lines) + "\n"


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
        *["| " + " | ".join(row) + " |" for row in rows],
    ]


def _row(
    result: SizeResult,
    run: str,
    measurement: Measurement,
    ratio: str,
    *,
    forced_expiries: int = 0,
    rss: bool = True,
) -> tuple[str, ...]:
    def count(value: int | None) -> str:
        return "-" if value is None else f"{value:,}"

    tokens = count(measurement.token_calls)
    if forced_expiries:
        tokens += f" ({forced_expiries} forced)"

    return (
        f"{result.records:,}",
        run,
        f"{measurement.seconds:,.1f}",
        f"{measurement.cpu_seconds:,.1f}",
        f"{measurement.records_per_second:,.0f}",
        ratio,
        f"{measurement.peak_rss_bytes / _MB:,.0f}" if rss else "-",
        count(measurement.api_calls),
        tokens,
    )


def _ratio(measurement: Measurement, base: Measurement, *, by: str = "seconds") -> float:
    return float(getattr(measurement, by)) / float(getattr(base, by))


def _latency_ratio(result: SizeResult, latency: LatencyRuns) -> float:
    """The sequential run's time over what the latency alone costs: pages x latency."""
    return latency.sequential.seconds / (result.walk.requests * latency.latency_ms / 1000)


def _installed() -> str:
    """Whether this is what a user installs: optional packages change dlt's imports (it imports
    SQLAlchemy, where installed, at each load)."""
    extras = [name for name in ("sqlalchemy", "dagster") if importlib.util.find_spec(name)]
    if not extras:
        return "cgsync and its dependencies only (make bench)"
    return "with " + ", ".join(extras) + " (not what `pip install cgsync` brings)"


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _memory_gb() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _commit() -> str:
    described = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        check=False,
        cwd=_REPO,
        capture_output=True,
        text=True,
    )
    return described.stdout.strip() or "unknown"
