"""The floor: a bare httpx walk of every page that only parses JSON and follows the cursor.

Run as a child process by `python -m benchmarks`, so that its wall time and peak RSS compare
fairly with `cgsync sync`'s. Credentials come from CUSTOMERGAUGE_CLIENT_ID and
CUSTOMERGAUGE_CLIENT_SECRET (never from the command line). Prints one JSON object:
`{"records": ..., "requests": ..., "token_calls": 1}`.

    python -m benchmarks.floor --api-url URL --token-url URL \
        --endpoint /v7/rest/sync/responses:drivers,questions,tags,properties [--record DIR]

With `--record DIR` each page's raw body is also written to DIR for the replay
(`benchmarks.replay`); the benchmark does that in a separate, untimed walk.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

PER_PAGE = 1000
TIMEOUT_SECONDS = 60.0
FIRST_PAGE = "first"
"""The recorded file name of the page fetched without a cursor."""

PageSink = Callable[[str, str, bytes], None]
"""Called with the endpoint path, the request's cursor (or FIRST_PAGE) and the raw body."""


def parse_endpoint(spec: str) -> tuple[str, list[str]]:
    """`/path:a,b` -> ("/path", ["a", "b"]); a bare `/path` has no expansions."""
    path, _, expansions = spec.partition(":")
    return path, [name for name in expansions.split(",") if name]


def page_file(directory: Path, path: str, cursor: str) -> Path:
    """Where the page of endpoint `path` at `cursor` is recorded."""
    return directory / path.strip("/").replace("/", "_") / f"{cursor}.json"


def walk(
    api_url: str,
    token_url: str,
    endpoints: list[tuple[str, list[str]]],
    *,
    per_page: int,
    client_id: str,
    client_secret: str,
    on_page: PageSink | None = None,
) -> dict[str, int]:
    """Walk every page of each endpoint until `data` is empty; count records and requests."""
    records = requests = 0
    with httpx.Client(timeout=TIMEOUT_SECONDS) as http:
        token = http.post(
            token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        for path, expansions in endpoints:
            params: dict[str, Any] = {"per_page": per_page, "with[]": expansions}
            cursor = FIRST_PAGE
            while True:
                response = http.get(api_url + path, params=params, headers=headers)
                response.raise_for_status()
                requests += 1
                body = orjson.loads(response.content)
                if on_page is not None:
                    on_page(path, cursor, response.content)
                if not body["data"]:
                    break
                records += len(body["data"])
                cursor = str(body["cursor"]["next"])
                params["cursor"] = cursor
    return {"records": records, "requests": requests, "token_calls": 1}


def recorder(directory: Path) -> PageSink:
    """A page sink that writes each raw body to `page_file(directory, ...)`."""

    def record(path: str, cursor: str, body: bytes) -> None:
        target = page_file(directory, path, cursor)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)

    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--token-url", required=True)
    parser.add_argument(
        "--endpoint", action="append", required=True, help="PATH[:expansion,...], repeatable"
    )
    parser.add_argument("--per-page", type=int, default=PER_PAGE)
    parser.add_argument("--record", type=Path, help="also write each page's body here")
    args = parser.parse_args(argv)
    try:
        client_id = os.environ["CUSTOMERGAUGE_CLIENT_ID"]
        client_secret = os.environ["CUSTOMERGAUGE_CLIENT_SECRET"]
    except KeyError as missing:
        sys.exit(f"error: set {missing.args[0]} for the floor walk")
    result = walk(
        args.api_url.rstrip("/"),
        args.token_url,
        [parse_endpoint(spec) for spec in args.endpoint],
        per_page=args.per_page,
        client_id=client_id,
        client_secret=client_secret,
        on_page=recorder(args.record) if args.record else None,
    )
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
