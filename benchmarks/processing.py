"""Client-side processing speed: page JSON bytes -> orjson -> records_to_arrow, in-process.

Replays realistic pages (generated, seeded; or recorded from the emulator with --emulator)
and prints records/s per record kind and step. Issue #4 asks for >= 100k records/s. The
"parse + records_to_arrow" rows are the realistic ones: "records_to_arrow alone" converts the
same parsed records again and again, and Python caches the UTF-8 of a non-ASCII string after
its first conversion (the emulator's names are full of them; the generated ones are ASCII).

    python -m benchmarks.processing [--records 200000] [--emulator]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from cgsync._arrow import records_to_arrow
from cgsync._endpoints import ENDPOINTS

SEGMENTS: dict[str, list[str | None]] = {
    "Country": ["NL", "DE", "GB", "US", None],
    "Division": ["Global", "EMEA", "Americas"],
    "Touchpoint": ["Relationship", "Onboarding", "Support"],
    "Key Contact": ["Yes", "No", None],
    "Segment A": ["A1", "A2", None],
    "Account Manager": ["Jane Roe", "Max Mustermann", None],
    "Account Manager (EU)": ["Anna de Vries", None],
}
TIMEZONES = ("UTC", "Europe/Amsterdam")
STATUSES = ["survey-sent", "survey-opened", "survey-clicked", "bounced"]
TAGS = ["Onboarding", "Pricing", "Support", "Delivery", "Product"]
DRIVERS = ["Price", "Quality", "Service", "Speed"]


def make_record(kind: str, cgid: int, rng: random.Random) -> dict[str, Any]:
    """One realistic API record of `kind` ("response" or "non_response"), all expansions on."""
    created = datetime(2024, 1, 1) + timedelta(seconds=rng.randrange(60 * 86400))

    def date(offset_hours: float) -> str:
        return (created + timedelta(hours=offset_hours)).strftime("%Y-%m-%d %H:%M:%S")

    record: dict[str, Any] = {
        "contact": {"first_name": f"First{cgid % 997}", "last_name": f"Last{cgid % 991}"},
        "account": {"name": f"Account {cgid % 503}", "number": str(cgid % 503)},
        "number_customergauge": cgid,
        "number_customer": str(cgid % 50_000),
        "number_order": str(cgid * 7),
        "email": f"person{cgid}@example.com",
        "phone": rng.choice([None, f"+31{cgid:09d}"]),
        "date_creation": date(0),
        "date_order": date(-24),
        "date_email_sent": date(1),
        "language": rng.choice(["EN", "NL", "DE"]),
        "properties": [
            {"field": name, "reference": rng.choice(values)}
            for name, values in SEGMENTS.items()
            if rng.random() < 0.9
        ],
    }
    if kind == "non_response":
        status = rng.choice(STATUSES)
        record |= {
            "status": status,
            "date_sent": date(1),
            "date_opened": date(5) if status in ("survey-opened", "survey-clicked") else None,
            "date_clicked": date(6) if status == "survey-clicked" else None,
            "link": f"https://survey.eu.customergauge.com/r/{cgid:x}",
        }
    else:
        record |= {
            "nps": rng.randrange(11),
            "comment": rng.choice([None, "Great service, slow delivery.", "Too expensive"]),
            "date_survey_response": date(30),
            "follow_up": {"requested": rng.random() < 0.2, "details": None},
            "tags": rng.sample(TAGS, rng.randrange(3)),
            "drivers": [
                {"id": i, "name": name, "sentiment": rng.choice(["positive", "negative"])}
                for i, name in enumerate(rng.sample(DRIVERS, rng.randrange(3)))
            ],
            "questions": [{"id": 7, "question": "Why?", "answer": rng.choice([None, "Price"])}],
        }
    return record


def generated_pages(kind: str, records: int, per_page: int, seed: int = 7) -> list[bytes]:
    """Page bodies as the API sends them, `per_page` records each."""
    rng = random.Random(seed)
    pages: list[bytes] = []
    for start in range(0, records, per_page):
        data = [
            make_record(kind, cgid, rng)
            for cgid in range(start + 1, min(records, start + per_page) + 1)
        ]
        pages.append(orjson.dumps({"data": data, "cursor": {"next": start + per_page}}))
    return pages


def emulator_pages(resource: str, records: int) -> list[bytes]:
    """Page bodies recorded from the in-process emulator (raw bytes, as on the wire)."""
    import httpx

    from cgsync.emulator import EmulatorConfig, start_emulator

    endpoint = ENDPOINTS[resource]
    pages: list[bytes] = []
    with start_emulator(EmulatorConfig(records=records, seed=7)) as emu, httpx.Client() as http:
        token = http.post(
            emu.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
            },
        ).json()["access_token"]
        params: dict[str, Any] = {
            "per_page": endpoint.page_limit,
            "with[]": list(endpoint.expansions),
        }
        while True:
            response = http.get(
                emu.base_url + endpoint.path,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
            body = orjson.loads(response.content)
            if not body["data"]:
                return pages
            pages.append(response.content)
            params["cursor"] = body["cursor"]["next"]


def measure(
    inputs: Sequence[Any], step: Callable[[Any], int], repeat: int = 3
) -> tuple[float, float]:
    """Best records/s of `step` over all inputs, by the wall clock and by this process's CPU time.

    On a shared machine the CPU figure is the steadier one.
    """
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        count = sum(step(one) for one in inputs)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return count / best_wall, count / best_cpu


def steps(
    kind: str, pages: list[bytes]
) -> Iterator[tuple[str, Sequence[Any], Callable[[Any], int]]]:
    """The measured steps with their inputs: parsing, converting, and both in each time zone."""
    synced_at = datetime.now(UTC)

    def parse(page: bytes) -> int:
        return len(orjson.loads(page)["data"])

    def convert(records: list[dict[str, Any]], timezone: str = "UTC") -> int:
        return records_to_arrow(
            records, kind, source_timezone=timezone, synced_at=synced_at
        ).num_rows

    yield "parse (orjson)", pages, parse
    parsed = [orjson.loads(page)["data"] for page in pages]

    def parse_and_convert(timezone: str) -> Callable[[bytes], int]:
        return lambda page: convert(orjson.loads(page)["data"], timezone)

    yield "records_to_arrow alone, UTC", parsed, convert
    for timezone in TIMEZONES:
        yield f"parse + records_to_arrow, {timezone}", pages, parse_and_convert(timezone)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--emulator", action="store_true", help="record pages from the emulator")
    args = parser.parse_args(argv)

    table = Table(title=f"Client-side processing, {args.records:,} records per kind")
    for column in ("resource", "step"):
        table.add_column(column)
    for column in ("records/s", "records/CPU-s", "MB/s"):
        table.add_column(column, justify="right")
    for resource in ("responses", "non_responses"):
        endpoint = ENDPOINTS[resource]
        if args.emulator:
            pages = emulator_pages(resource, args.records)
        else:
            pages = generated_pages(endpoint.record_kind, args.records, endpoint.page_limit)
        count = sum(len(orjson.loads(page)["data"]) for page in pages)
        megabytes = sum(map(len, pages)) / 1e6
        for name, inputs, step in steps(endpoint.record_kind, pages):
            rate, cpu_rate = measure(inputs, step)
            megabytes_per_second = rate / count * megabytes
            table.add_row(
                resource, name, f"{rate:,.0f}", f"{cpu_rate:,.0f}", f"{megabytes_per_second:,.1f}"
            )
    Console().print(table)


if __name__ == "__main__":
    main()
