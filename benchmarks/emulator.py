"""`python -m benchmarks.emulator`: how fast the emulator serves, and what 10M records cost.

The emulator runs in its own process (`cgsync emulator`), so it has a core of its own; the
client is plain httpx + orjson walking each listing with 1,000 records per page (400 for v6).
"records/s" is wall-clock; "per server CPU s" divides by the emulator's own CPU time.

    python -m benchmarks.emulator                 # walks at 100k and 1M, start-up at 10M
    python -m benchmarks.emulator --walks 20k --startup 1M      # quicker
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import orjson
from rich.console import Console
from rich.table import Table

# name, path, per_page, with[]: the expansions cgsync asks for.
LISTINGS = (
    ("v7 non-responses", "/v7/rest/sync/non-responses", 1000, ("properties",)),
    (
        "v7 responses",
        "/v7/rest/sync/responses",
        1000,
        ("drivers", "questions", "tags", "properties"),
    ),
    ("v6 responses", "/v6/rest/responses", 400, ()),
)
LAST_DAY = "2025-06-01"
"""The last whole day before the emulator's default start."""
TARGET_RECORDS_PER_SECOND = 50_000
TARGET_STARTUP_SECONDS = 5.0
TARGET_RSS_MB = 500
_TICKS = os.sysconf("SC_CLK_TCK")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")


@dataclass(frozen=True)
class Running:
    pid: int
    base_url: str
    startup_seconds: float
    """From spawning the process to the first answered token request."""


@contextmanager
def emulator_process(records: int) -> Iterator[Running]:
    command = [sys.executable, "-m", "cgsync", "emulator", "--port", "0", "--speed", "0"]
    command += ["--records", str(records)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = ""
        while "token URL" not in banner:
            line = process.stdout.readline()
            if not line:
                raise SystemExit(f"the emulator exited early (code {process.wait()})")
            banner += line
        found = re.search(r"token URL\s+(\S+)/oauth2/token", banner)
        assert found, banner
        base_url = found.group(1)
        _token(base_url)
        yield Running(process.pid, base_url, time.perf_counter() - started)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _token(base_url: str) -> str:
    response = httpx.post(
        base_url + "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "cgsync-demo",
            "client_secret": "cgsync-demo-secret",
        },
        timeout=60,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def walk(
    base_url: str,
    path: str,
    per_page: int,
    expansions: Sequence[str],
    filters: Mapping[str, str] | None = None,
) -> int:
    """Walk a listing to its end; the number of records."""
    headers = {"Authorization": f"Bearer {_token(base_url)}"}
    count = 0
    v6 = path.startswith("/v6/")
    params: dict[str, str | int | list[str]] = {"per_page": per_page, "with[]": list(expansions)}
    params.update(filters or {})
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        while True:
            body = orjson.loads(client.get(path, params=params).content)
            count += len(body["data"])
            cursor = body["cursor"]["next"]
            if (v6 and cursor is None) or (not v6 and not body["data"]):
                return count
            params["cursor"] = cursor


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def walk_rows(records: int) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    with emulator_process(records) as emulator:
        for name, path, per_page, expansions in LISTINGS:
            cpu_before, started = cpu_seconds(emulator.pid), time.perf_counter()
            count = walk(emulator.base_url, path, per_page, expansions)
            seconds = time.perf_counter() - started
            cpu = cpu_seconds(emulator.pid) - cpu_before
            rows.append(
                (
                    f"{records:,}",
                    f"{name}, {per_page}/page"
                    + (f", with {'+'.join(expansions)}" if expansions else ""),
                    f"{count:,}",
                    f"{seconds:.2f}",
                    f"{count / seconds:,.0f}",
                    f"{count / cpu:,.0f}" if cpu else "-",
                    f"{peak_rss_mb(emulator.pid):,.0f}",
                )
            )
    return rows


def startup_rows(records: int) -> tuple[list[tuple[str, ...]], float, float]:
    """Start-up and memory; and a one-day period walk, which must not scan the whole history."""
    with emulator_process(records) as emulator:
        first_page = walk_first_page(emulator.base_url)
        rss = peak_rss_mb(emulator.pid)
        started = time.perf_counter()
        one_day = walk(
            emulator.base_url,
            LISTINGS[0][1],
            1000,
            ("properties",),
            {"period[field]": "date_sent", "period[start]": LAST_DAY, "period[end]": LAST_DAY},
        )
        seconds = time.perf_counter() - started
        rows: list[tuple[str, ...]] = [
            (
                f"{records:,}",
                "start-up (spawn to first token) + one page",
                f"{first_page:,}",
                f"{emulator.startup_seconds:.2f}",
                "-",
                "-",
                f"{rss:,.0f}",
            ),
            (
                f"{records:,}",
                f"v7 non-responses sent on {LAST_DAY} (period filter)",
                f"{one_day:,}",
                f"{seconds:.2f}",
                f"{one_day / seconds:,.0f}",
                "-",
                f"{peak_rss_mb(emulator.pid):,.0f}",
            ),
        ]
        return rows, emulator.startup_seconds, rss


def walk_first_page(base_url: str) -> int:
    headers = {"Authorization": f"Bearer {_token(base_url)}"}
    response = httpx.get(
        base_url + "/v7/rest/sync/responses",
        params={"per_page": 1000},
        headers=headers,
        timeout=60,
    )
    return len(orjson.loads(response.content)["data"])


def parse_sizes(text: str) -> list[int]:
    sizes = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        found = _SIZE.match(part)
        if not found:
            raise SystemExit(f"error: {part!r} is not a size; use e.g. 20000, 100k or 1M")
        multiplier = {"": 1, "k": 1_000, "m": 1_000_000}[found.group(2).lower()]
        sizes.append(int(float(found.group(1)) * multiplier))
    return sizes


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.emulator", description=__doc__)
    parser.add_argument("--walks", default="100k,1M", help="sizes for full walks (100k,1M)")
    parser.add_argument("--startup", default="10M", help="sizes for start-up and memory (10M)")
    arguments = parser.parse_args(argv)
    table = Table(title="cgsync emulator: serving rate, start-up and memory")
    for column in (
        "records",
        "run",
        "served",
        "wall s",
        "records/s",
        "per server CPU s",
        "peak RSS MB",
    ):
        table.add_column(column, justify="left" if column == "run" else "right")
    console = Console(width=150)
    verdicts = []
    for records in parse_sizes(arguments.walks):
        rows = walk_rows(records)
        for row in rows:
            table.add_row(*row)
        # The target is for 1,000 records a page: the v7 listings.
        slowest = min(float(row[5].replace(",", "")) for row in rows if "1000/page" in row[1])
        met = slowest >= TARGET_RECORDS_PER_SECOND
        verdicts.append(
            f"{records:,}: slowest 1000/page listing {slowest:,.0f} records per server CPU second "
            f"(target {TARGET_RECORDS_PER_SECOND:,}): {'met' if met else 'NOT met'}"
        )
    for records in parse_sizes(arguments.startup):
        rows, seconds, rss = startup_rows(records)
        for row in rows:
            table.add_row(*row)
        met = seconds < TARGET_STARTUP_SECONDS and rss < TARGET_RSS_MB
        verdicts.append(
            f"{records:,}: start-up {seconds:.2f} s (target < {TARGET_STARTUP_SECONDS:g} s), "
            f"peak RSS {rss:,.0f} MB (target < {TARGET_RSS_MB} MB): {'met' if met else 'NOT met'}"
        )
    console.print(table)
    for verdict in verdicts:
        console.print(verdict)


if __name__ == "__main__":
    main()
