"""`cgsync sync` with one step of its process tuning left out: the benchmark's ablation.

Each step of `cgsync._tuning.TUNING_STEPS` must earn its keep (issue #15): `python -m
benchmarks --tuning` runs the sync once without each of the steps that change speed or memory,
beside the tuned sync. Run as a child process:

    python -m benchmarks.untuned --without gc -- sync --destination duckdb ...
"""

from __future__ import annotations

import argparse
import sys

from cgsync import _tuning

ABLATED = ("duckdb-memory", "arrow-malloc", "compact-malloc")
"""The steps that change speed or memory (telemetry and loaded files change neither much)."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--without", choices=sorted(_tuning.TUNING_STEPS), required=True)
    parser.add_argument("cgsync", nargs=argparse.REMAINDER, help="-- and cgsync's arguments")
    args = parser.parse_args(argv)
    arguments = args.cgsync[1:] if args.cgsync[:1] == ["--"] else args.cgsync
    tune = _tuning.tune_sync_process
    _tuning.tune_sync_process = lambda skip=(): tune(skip={*skip, args.without})
    from cgsync.cli import main as cgsync_main

    sys.argv = ["cgsync", *arguments]
    cgsync_main()


if __name__ == "__main__":
    main()
