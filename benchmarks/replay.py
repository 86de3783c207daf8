"""Client-side processing alone: recorded pages replayed in-process through the real sync code.

The pages recorded by `benchmarks.floor --record` are served by an httpx transport instead of
a server to `cgsync sync`'s own runner (`run_sync`), so `ApiClient` (parse), `records_to_arrow`
(flatten, Arrow) and dlt (normalize, load into DuckDB, in checkpoints) do all of their work and
nothing waits on the network. One endpoint at a time, so that each record kind has its own
rate; before the replay the same page files are parsed by `pyarrow.json` alone, the yardstick
of issue #15. Run as a child process by `python -m benchmarks`; prints
`{"records": ..., "refresh_records": ..., "seconds": ..., "cpu_seconds": ..., "parse":
{"records": ..., "seconds": ..., "cpu_seconds": ...}}`.

    python -m benchmarks.replay PAGES_DIR --workdir DIR --endpoint responses \
        [--source-timezone Europe/Amsterdam]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dlt
import httpx
import orjson
import pyarrow as pa
import pyarrow.compute as pa_compute
import pyarrow.json as pa_json

from benchmarks.floor import FIRST_PAGE, page_file
from cgsync import Lake, SyncOptions, run_sync
from cgsync._endpoints import ENDPOINTS
from cgsync._tuning import tune_sync_process
from cgsync.settings import CURSOR_PARAM, DEFAULT_SOURCE_TIMEZONE, PERIOD_FIELD_PARAM

REPLAY_URL = "http://replay.invalid"
TOKEN_PATH = "/oauth2/token"
EMPTY_WINDOW = {"data": [], "cursor": {"next": None}}


class ReplayTransport(httpx.BaseTransport):
    """Answers the token request, and each page request with the page recorded at its cursor.

    The recording is the walk alone (the floor's): a request for a period, which is the sync's
    refresh window, gets an empty listing, as a window with nothing new in it would. Served the
    recorded pages instead, the refresh would read every record twice.
    """

    def __init__(self, pages: Path) -> None:
        self._pages = pages

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN_PATH:
            return httpx.Response(200, json={"access_token": "replay", "expires_in": 3600})
        if PERIOD_FIELD_PARAM in request.url.params:
            return httpx.Response(200, json=EMPTY_WINDOW)
        cursor = request.url.params.get(CURSOR_PARAM, FIRST_PAGE)
        recorded = page_file(self._pages, request.url.path, cursor)
        if not recorded.is_file():
            message = f"no page recorded for {request.url.path} at cursor {cursor}"
            return httpx.Response(404, json={"message": message})
        return httpx.Response(
            200, content=recorded.read_bytes(), headers={"Content-Type": "application/json"}
        )


def parse_with_pyarrow(pages: Path, endpoint: str) -> dict[str, float]:
    """Read and parse every recorded page of `endpoint` with `pyarrow.json` alone, timed: what
    the fastest JSON-to-Arrow reader at hand does with the same bytes, nothing more."""
    files = sorted(page_file(pages, ENDPOINTS[endpoint].path, FIRST_PAGE).parent.iterdir())
    records = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for recorded in files:
        body = recorded.read_bytes()
        # A page is one JSON object on one line: it must fit in one block.
        options = pa_json.ReadOptions(block_size=max(len(body) + 1, 1 << 20))
        table = pa_json.read_json(pa.BufferReader(body), read_options=options)
        records += pa_compute.sum(pa_compute.list_value_length(table.column("data"))).as_py() or 0
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {"records": records, "seconds": seconds, "cpu_seconds": cpu_seconds}


def replay(pages: Path, workdir: Path, *, endpoint: str, source_timezone: str) -> dict[str, float]:
    """Sync the recorded pages of `endpoint` into a fresh DuckDB file under `workdir` with
    `cgsync sync`'s own runner (checkpoints, lock, views); time the whole run (wall and this
    process's CPU time)."""
    options = SyncOptions(
        client_id="replay",
        client_secret="replay",
        auth_url=REPLAY_URL + TOKEN_PATH,
        api_url=REPLAY_URL,
        endpoints=(endpoint,),
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
    refresh = sum(resource.refresh_records for resource in summary.resources.values())
    return {
        "records": records,
        "refresh_records": refresh,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", type=Path, help="directory of recorded pages")
    parser.add_argument("--workdir", type=Path, required=True, help="where the DuckDB file goes")
    parser.add_argument("--endpoint", choices=sorted(ENDPOINTS), required=True)
    parser.add_argument("--source-timezone", default=DEFAULT_SOURCE_TIMEZONE)
    args = parser.parse_args(argv)
    tune_sync_process()  # as `cgsync sync` runs: DuckDB's memory and threads, the collector
    if not args.pages.is_dir():
        sys.exit(f"error: {args.pages} is not a directory of recorded pages")
    parsed = parse_with_pyarrow(args.pages, args.endpoint)
    result = replay(
        args.pages, args.workdir, endpoint=args.endpoint, source_timezone=args.source_timezone
    )
    result["parse"] = parsed
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
