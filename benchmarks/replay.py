"""Client-side processing alone: recorded pages replayed in-process through the real sync code.

The pages recorded by `benchmarks.floor --record` are served by an httpx transport instead of
a server to `cgsync sync`'s own runner (`run_sync`), so `ApiClient` (parse), `records_to_arrow`
(flatten, Arrow) and dlt (normalize, load into DuckDB, in checkpoints) do all of their work and
nothing waits on the network. Run as a child process by `python -m benchmarks`; prints `{"records": ..., "seconds": ..., "cpu_seconds": ...}`.

    python -m benchmarks.replay PAGES_DIR --workdir DIR [--source-timezone Europe/Amsterdam]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dlt
import httpx
import orjson

from benchmarks.floor import FIRST_PAGE, page_file
from cgsync import Lake, SyncOptions, run_sync
from cgsync._tuning import tune_sync_process
from cgsync.settings import CURSOR_PARAM, DEFAULT_SOURCE_TIMEZONE

REPLAY_URL = "http://replay.invalid"
TOKEN_PATH = "/oauth2/token"


class ReplayTransport(httpx.BaseTransport):
    """Answers the token request, and each page request with the page recorded at its cursor."""

    def __init__(self, pages: Path) -> None:
        self._pages = pages

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN_PATH:
            return httpx.Response(200, json={"access_token": "replay", "expires_in": 3600})
        cursor = request.url.params.get(CURSOR_PARAM, FIRST_PAGE)
        recorded = page_file(self._pages, request.url.path, cursor)
        if not recorded.is_file():
            message = f"no page recorded for {request.url.path} at cursor {cursor}"
            return httpx.Response(404, json={"message": message})
        return httpx.Response(
            200, content=recorded.read_bytes(), headers={"Content-Type": "application/json"}
        )


def replay(pages: Path, workdir: Path, *, source_timezone: str) -> dict[str, float]:
    """Sync the recorded pages into a fresh DuckDB file under `workdir` with `cgsync sync`'s own
    runner (checkpoints, lock, views); time the whole run (wall and this process's CPU time)."""
    options = SyncOptions(
        client_id="replay",
        client_secret="replay",
        auth_url=REPLAY_URL + TOKEN_PATH,
        api_url=REPLAY_URL,
        source_timezone=source_timezone,
        lake=Lake(
            destination=dlt.destinations.duckdb(str(workdir / "replay.duckdb")),
            pipeline_name="cgsync_replay",
            pipelines_dir=str(workdir / "pipelines"),
        ),
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    summary = run_sync(options, transport=ReplayTransport(pages))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    records = sum(resource.records for resource in summary.resources.values())
    return {"records": records, "seconds": seconds, "cpu_seconds": cpu_seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", type=Path, help="directory of recorded pages")
    parser.add_argument("--workdir", type=Path, required=True, help="where the DuckDB file goes")
    parser.add_argument("--source-timezone", default=DEFAULT_SOURCE_TIMEZONE)
    args = parser.parse_args(argv)
    tune_sync_process()  # as `cgsync sync` runs: DuckDB's memory and threads, the collector
    if not args.pages.is_dir():
        sys.exit(f"error: {args.pages} is not a directory of recorded pages")
    result = replay(args.pages, args.workdir, source_timezone=args.source_timezone)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
