"""`python -m benchmarks`: cgsync against the emulator in its own process, next to the floor.

For each size: the floor (a bare httpx walk), `cgsync sync` end to end into DuckDB, the next
sync with nothing new beside the bare imports, `--full-refresh` and `--reconcile` of that lake,
the sync with 200 ms per page (sequential, and `--parallel 4`), the recorded pages replayed
in-process beside pyarrow.json's parse of them, and with `--peers` dlt's generic rest_api
source. Prints the table and the issue's targets, and writes them with the machine to
benchmarks/results.md. See docs/benchmarks.md.

    python -m benchmarks --peers --tuning     # 100k and 1M records, 200 ms/page at 1M
    python -m benchmarks --10m --peers --tuning   # and 10M
    python -m benchmarks --quick --no-write   # 20k records, everything (CI)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from benchmarks.sync import (
    REPLAY_MAX_RECORDS,
    BenchmarkError,
    SizeResult,
    benchmark_size,
    sync_supports,
)
from benchmarks.table import (
    Target,
    evaluate_targets,
    machine,
    markdown,
    measurement_rows,
    rich_tables,
)

DEFAULT_SIZES = "100k,1M"
DEFAULT_LATENCY_SIZES = "1M"
PEER_MAX_RECORDS = 100_000
"""The peer runs at sizes up to this (it takes minutes and gigabytes beyond)."""
QUICK_RECORDS = 20_000
TEN_MILLION = 10_000_000
RESULTS = Path(__file__).resolve().parent / "results.md"
WIDE = 160
_SUFFIXES = {"k": 1_000, "m": 1_000_000}


def parse_sizes(text: str, option: str) -> list[int]:
    """`100k,1M,2500` -> [100000, 1000000, 2500]; `none` or empty -> []."""
    sizes = []
    for part in text.replace("_", "").split(","):
        part = part.strip().lower()
        if part in ("", "none"):
            continue
        multiplier = _SUFFIXES.get(part[-1], 1)
        digits = part[:-1] if part[-1] in _SUFFIXES else part
        try:
            size = int(float(digits) * multiplier)
        except ValueError:
            raise ValueError(
                f"{option}: {part!r} is not a size; use e.g. 20000, 100k or 1M"
            ) from None
        if size < 1:
            raise ValueError(f"{option}: sizes must be at least 1 record, got {part!r}")
        sizes.append(size)
    return sorted(set(sizes))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--sizes", default=DEFAULT_SIZES, help=f"records per run (default {DEFAULT_SIZES})"
    )
    parser.add_argument("--10m", dest="ten_million", action="store_true", help="add 10M records")
    parser.add_argument(
        "--latency-sizes",
        default=None,
        help=f"sizes that also run with 200 ms per page (default {DEFAULT_LATENCY_SIZES}; none: skip)",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help=f"also run dlt's rest_api source at the sizes up to {PEER_MAX_RECORDS:,}",
    )
    parser.add_argument(
        "--tuning",
        action="store_true",
        help="also run the sync without each tuning step, at the largest size up to 1M",
    )
    parser.add_argument("--records", type=int, help="one size only, latency runs included")
    parser.add_argument("--quick", action="store_true", help=f"--records {QUICK_RECORDS:,} (CI)")
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the results file (Markdown)")
    return parser


def _plan(args: argparse.Namespace) -> tuple[list[int], list[int]]:
    """The sizes to run and those that also run with added latency."""
    if args.quick or args.records is not None:
        records = QUICK_RECORDS if args.records is None else args.records
        if records < 1:
            raise ValueError(f"--records must be at least 1, got {records}")
        sizes = [records]
        latency_default = str(records)
    else:
        sizes = parse_sizes(args.sizes, "--sizes")
        latency_default = DEFAULT_LATENCY_SIZES
    if args.ten_million:
        sizes = sorted({*sizes, TEN_MILLION})
    if not sizes:
        raise ValueError("--sizes is empty: give at least one size, e.g. 100k")
    latency_sizes = parse_sizes(args.latency_sizes or latency_default, "--latency-sizes")
    if unknown := [size for size in latency_sizes if size not in sizes]:
        raise ValueError(f"--latency-sizes {unknown[0]:,} is not among the sizes run: {sizes}")
    return sizes, latency_sizes


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    progress, console = Console(stderr=True), Console()
    if not console.is_terminal:
        console = Console(width=WIDE)  # logs are wider than Rich's default of 80 columns
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        sizes, latency_sizes = _plan(args)
    except ValueError as error:
        parser.error(str(error))
    results: list[SizeResult] = []
    tuning_size = max((size for size in sizes if size <= REPLAY_MAX_RECORDS), default=None)
    try:
        parallel = sync_supports("--parallel")
        if not parallel:
            progress.log("cgsync sync has no --parallel yet: that run is reported as n/a")
        for size in sizes:
            with tempfile.TemporaryDirectory(prefix=f"cgsync-bench-{size}-") as workdir:
                results.append(
                    benchmark_size(
                        size,
                        Path(workdir),
                        with_latency=size in latency_sizes,
                        parallel=parallel,
                        with_peer=args.peers and size <= PEER_MAX_RECORDS,
                        with_tuning=args.tuning and size == tuning_size,
                        say=progress.log,
                    )
                )
    except BenchmarkError as error:
        progress.print(f"error: {error}", style="bold red", markup=False)
        if results:  # what was measured before the failure is still worth seeing
            _write(args, argv, console, progress, results, failure=str(error))
        return 1
    _write(args, argv, console, progress, results)
    return 0


def _write(
    args: argparse.Namespace,
    argv: Sequence[str],
    console: Console,
    progress: Console,
    results: list[SizeResult],
    *,
    failure: str | None = None,
) -> None:
    """Print the tables and, unless --no-write, write them with the run's command."""
    rows, targets, facts = _print(console, results)
    if not args.no_write:
        command = " ".join(["python -m benchmarks", *argv])
        args.output.write_text(markdown(rows, targets, facts, command, failure=failure))
        progress.log(f"wrote {args.output}")


def _print(
    console: Console, results: list[SizeResult]
) -> tuple[list[tuple[str, ...]], list[Target], dict[str, str]]:
    rows, targets, facts = measurement_rows(results), evaluate_targets(results), machine()
    for table in rich_tables(
        rows, targets, f"cgsync vs the floor, {facts['date']}, {facts['cpu']}"
    ):
        console.print(table)
    return rows, targets, facts


if __name__ == "__main__":
    sys.exit(main())
