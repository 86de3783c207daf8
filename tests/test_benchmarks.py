"""`python -m benchmarks`: a smoke run at a tiny size, the size flags, and how targets are judged."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parent.parent
from benchmarks.__main__ import main, parse_sizes
from benchmarks.sync import LatencyRuns, Measurement, Replay, SizeResult, Walk
from benchmarks.table import COLUMNS, NOT_IMPLEMENTED, RUNS, evaluate_targets, measurement_rows
from benchmarks.untuned import ABLATED

MB = 1_000_000


def run_benchmarks(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *arguments],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def markdown_rows(text: str, header: tuple[str, ...]) -> list[list[str]]:
    """The body rows of the Markdown table whose header is `header`."""
    lines = text.splitlines()
    start = lines.index("| " + " | ".join(header) + " |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_a_tiny_run_prints_and_writes_every_row(tmp_path: Path) -> None:
    results = tmp_path / "results.md"

    finished = run_benchmarks(
        "--records", "2000", "--peers", "--tuning", "--output", str(results)
    )  # fmt: skip

    assert finished.returncode == 0, finished.stderr
    assert "Targets of issue #15" in finished.stdout
    written = results.read_text()
    assert "- cpu: " in written and "- python: CPython 3.11" in written
    rows = {row[1]: dict(zip(COLUMNS, row)) for row in markdown_rows(written, COLUMNS)}
    floor, sync = rows[RUNS["floor"]], rows[RUNS["sync"]]
    sequential = rows[RUNS["sequential"].format(ms=200)]
    parallel = rows[RUNS["parallel"].format(ms=200, workers=4)]
    replays = [
        rows[RUNS["replay"].format(endpoint=kind)] for kind in ("responses", "non_responses")
    ]
    parses = [rows[RUNS["parse"].format(endpoint=kind)] for kind in ("responses", "non_responses")]
    full_refresh, reconcile = rows[RUNS["full_refresh"]], rows[RUNS["reconcile"]]
    assert {row["records"] for row in rows.values()} == {"2,000"}
    for row in (floor, sync, sequential, full_refresh, reconcile, *replays):
        assert float(row["wall s"]) > 0 and int(row["peak RSS MB"]) > 0
    # Each kind is replayed on its own beside pyarrow.json's parse of the same pages.
    assert sum(int(row["records/s"].replace(",", "")) > 0 for row in parses) == 2
    assert all(row["ratio"].endswith("% of pyarrow.json") for row in replays)
    # --full-refresh and --reconcile of the synced lake read every record again.
    for row in (full_refresh, reconcile):
        assert row["ratio"].endswith("x cgsync sync") and row["API calls"] == sync["API calls"]
    # Each tuning step that changes speed or memory is left out once, beside the tuned sync.
    for step in ABLATED:
        untuned = rows[RUNS["untuned"].format(step=step)]
        assert untuned["ratio"].endswith("x RSS of cgsync sync") and int(untuned["peak RSS MB"]) > 0
    peer = rows[RUNS["peer"]]
    assert peer["ratio"].endswith("x cgsync sync, every record") and int(peer["API calls"]) > 0
    # Every run reads the floor's pages, then the responses' refresh window (at least its empty
    # page); the calls target below judges each sync's calls exactly against both.
    assert int(floor["API calls"]) < int(sync["API calls"]) and sync["token calls"] == "1"
    # The sequential run had its tokens expired once: one more token.
    assert sequential["token calls"] == "2 (1 forced)"
    assert int(floor["API calls"]) < int(sequential["API calls"])
    assert parallel["wall s"] == NOT_IMPLEMENTED or float(parallel["wall s"]) > 0
    # The next sync of the same lake reads nothing new: its empty pages and refresh windows.
    periodic, imports = rows[RUNS["periodic"]], rows[RUNS["imports"]]
    assert float(periodic["wall s"]) > float(imports["wall s"]) > 0
    assert periodic["records/s"] == "0" and 0 < int(periodic["API calls"]) < int(sync["API calls"])
    assert imports["API calls"] == "-" and periodic["ratio"].endswith("x bare imports")
    targets = markdown_rows(written, ("target", "measured", "met"))
    assert len(targets) == 11 and all(met in ("yes", "NO", "-") for _, _, met in targets)
    [(_, _, lifecycle_met)] = [t for t in targets if t[0].startswith("initial load, periodic")]
    assert lifecycle_met == "yes"
    [(_, periodic_ratio, _)] = [t for t in targets if t[0].startswith("a sync with nothing new")]
    assert periodic_ratio.endswith("x at most")
    # The parallel load's calls are judged by their own bound, and keep within it.
    [(_, _, parallel_calls_met)] = [t for t in targets if t[0].startswith("--parallel 4 API calls")]
    assert parallel_calls_met == "yes"
    [(_, _, calls_met)] = [t for t in targets if t[0].startswith("API calls = pages + 1")]
    assert calls_met == "yes"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--sizes", "1x"], "--sizes: '1x' is not a size; use e.g. 20000, 100k or 1M"),
        (["--sizes", "0"], "--sizes: sizes must be at least 1 record, got '0'"),
        (["--sizes", "1M", "--latency-sizes", "5k"], "--latency-sizes 5,000 is not among"),
    ],
)
def test_bad_sizes_are_refused_before_anything_runs(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(arguments)

    assert exited.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


def test_sizes_take_suffixes_and_come_out_sorted_and_unique() -> None:
    assert parse_sizes("1M, 100k,2_500,100000", "--sizes") == [2_500, 100_000, 1_000_000]
    assert parse_sizes("none", "--latency-sizes") == []


def measurement(
    seconds: float, *, rss_mb: float = 150, api: int = 103, tokens: int = 1
) -> Measurement:
    return Measurement(
        seconds, 100_000, int(rss_mb * MB), seconds / 2, api_calls=api, token_calls=tokens
    )


def replay(endpoint: str, rate: float, parse_rate: float, *, rss_mb: float = 200) -> Replay:
    """A replay of 10,000 records at `rate` records/s beside pyarrow.json's `parse_rate`."""
    return Replay(
        endpoint,
        Measurement(10_000 / rate, 10_000, int(rss_mb * MB), cpu_seconds=1.0),
        Measurement(10_000 / parse_rate, 10_000, 0, cpu_seconds=0.1),
    )


def size_result(
    records: int,
    *,
    sync: Measurement,
    floor: float = 100.0,
    latency: LatencyRuns | None = None,
    replays: tuple[Replay, ...] = (),
    reconcile: Measurement | None = None,
    peer: Measurement | None = None,
) -> SizeResult:
    return SizeResult(
        records=records,
        walk=Walk(records=records, requests=103, endpoints=2),
        floor=measurement(floor),
        sync=sync,
        replays=replays or (replay("responses", 60_000, 90_000),),
        latency=latency,
        periodic=measurement(1.2),
        imports=measurement(1.0),
        full_refresh=measurement(100),
        reconcile=reconcile or measurement(100),
        peer=peer,
    )


def verdicts(results: list[SizeResult]) -> dict[str, bool | None]:
    return {target.name: target.met for target in evaluate_targets(results)}


def test_the_floor_ratio_is_judged_at_every_size_and_the_rss_growth_largest_to_smallest() -> None:
    fast = [size_result(1_000, sync=measurement(110)), size_result(5_000, sync=measurement(114))]
    slow = [size_result(1_000, sync=measurement(120)), size_result(5_000, sync=measurement(110))]
    grown = [
        size_result(1_000, sync=measurement(110, rss_mb=230)),
        size_result(5_000, sync=measurement(110, rss_mb=300)),
    ]
    flat = [
        size_result(1_000, sync=measurement(110, rss_mb=230)),
        size_result(5_000, sync=measurement(110, rss_mb=290)),
    ]

    assert verdicts(fast)["end to end at 1,000 within 1.15x of the floor"] is True
    assert verdicts(fast)["end to end at 5,000 within 1.15x of the floor"] is True
    assert verdicts(slow)["end to end at 1,000 within 1.15x of the floor"] is False
    assert verdicts(grown)["peak RSS at 5,000 within 1.3x of 1,000"] is False
    assert verdicts(flat)["peak RSS at 5,000 within 1.3x of 1,000"] is True


def test_every_run_of_cgsync_counts_for_the_memory_bound_but_the_peer_does_not() -> None:
    big_reconcile = [
        size_result(1_000, sync=measurement(110), reconcile=measurement(100, rss_mb=451))
    ]
    big_peer = [size_result(1_000, sync=measurement(110), peer=measurement(300, rss_mb=6_000))]

    assert verdicts(big_reconcile)["peak RSS of every run at most 450 MB"] is False
    assert verdicts(big_peer)["peak RSS of every run at most 450 MB"] is True


def test_each_record_kind_is_judged_against_pyarrow_at_its_worst_size() -> None:
    results = [
        size_result(
            1_000,
            sync=measurement(110),
            replays=(replay("responses", 30_000, 90_000), replay("non_responses", 90_000, 175_000)),
        ),
        size_result(
            5_000,
            sync=measurement(110),
            replays=(replay("responses", 50_000, 90_000), replay("non_responses", 80_000, 175_000)),
        ),
    ]

    targets = {t.name: t for t in evaluate_targets(results)}

    responses = targets["replay of responses at least 50% of pyarrow.json's parse rate"]
    assert responses.met is False and responses.measured.startswith("33% (30,000 of 90,000")
    non_responses = targets["replay of non_responses at least 50% of pyarrow.json's parse rate"]
    assert non_responses.met is False and non_responses.measured.startswith("46% (80,000")


def test_the_peer_row_says_how_many_records_it_lost() -> None:
    lossy = dataclasses.replace(measurement(300), lake_rows=99_000)
    complete = dataclasses.replace(measurement(300), lake_rows=100_000)

    def peer_ratio(peer: Measurement) -> str:
        rows = measurement_rows([size_result(100_000, sync=measurement(100), peer=peer)])
        [row] = [row for row in rows if row[1] == RUNS["peer"]]
        return row[COLUMNS.index("ratio")]

    assert peer_ratio(lossy) == "3.00x cgsync sync, 1,000 of 100,000 records missing"
    assert peer_ratio(complete) == "3.00x cgsync sync, every record"


def test_call_counts_must_be_exact_and_a_miss_is_named() -> None:
    one_call_too_many = [size_result(1_000, sync=measurement(100, api=104))]

    (api,) = [t for t in evaluate_targets(one_call_too_many) if t.name.startswith("API calls")]

    assert api.met is False and api.measured == "104 for 103 at 1,000"


def test_latency_targets_count_forced_expiries_and_a_missing_parallel_is_not_judged() -> None:
    sequential = measurement(103 * 0.2 * 1.05, api=105, tokens=2)
    latency = LatencyRuns(latency_ms=200, sequential=sequential, forced_expiries=1, parallel=None)
    results = [size_result(1_000, sync=measurement(100), latency=latency)]

    judged = verdicts(results)

    assert judged["200 ms/page at 1,000: sequential within 1.1x of pages x 200 ms"] is True
    assert judged["200 ms/page at 1,000: --parallel 4 at least 3x faster"] is None
    assert judged["token calls = 1 per hour of running + 1 per forced expiry"] is True
    assert judged["API calls = pages + 1 per endpoint + refresh pages (+ a forced expiry's 401s)"]
    assert judged["peak RSS of every run at most 450 MB"] is True


def test_a_run_that_fails_at_a_later_size_still_writes_the_sizes_it_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import benchmarks.__main__ as entry
    from benchmarks.sync import BenchmarkError

    def benchmark_size(size: int, workdir: Path, **_: object) -> SizeResult:
        if size > 1_000:
            raise BenchmarkError("cgsync sync ended failed: out of memory")
        return size_result(size, sync=measurement(100))

    monkeypatch.setattr(entry, "benchmark_size", benchmark_size)
    monkeypatch.setattr(entry, "sync_supports", lambda flag: True)
    output = tmp_path / "results.md"

    assert main(["--sizes", "1k,2k", "--latency-sizes", "none", "--output", str(output)]) == 1

    text = output.read_text()
    assert "**The run stopped: cgsync sync ended failed: out of memory**" in text
    sizes = {row[0] for row in markdown_rows(text, COLUMNS)}
    assert sizes == {"1,000"}


def test_the_replay_reads_each_recorded_record_once_and_its_refresh_window_empty(
    tmp_path: Path,
) -> None:
    from benchmarks.floor import FIRST_PAGE, page_file
    from benchmarks.replay import replay as replay_pages

    path = "/v7/rest/sync/responses"
    answered = "2026-12-01 10:00:00"
    records = [
        {"number_customergauge": cgid, "date_survey_response": answered, "nps": 9}
        for cgid in (1, 2, 3)
    ]
    pages = {FIRST_PAGE: (records[:2], 2), "2": (records[2:], 3), "3": ([], 3)}
    for cursor, (data, next_cursor) in pages.items():
        recorded = page_file(tmp_path / "pages", path, cursor)
        recorded.parent.mkdir(parents=True, exist_ok=True)
        recorded.write_bytes(orjson.dumps({"data": data, "cursor": {"next": next_cursor}}))

    result = replay_pages(
        tmp_path / "pages", tmp_path / "lake", endpoint="responses", source_timezone="UTC"
    )

    # The sync reads its refresh window after the walk: the recording has none to serve.
    assert (result["records"], result["refresh_records"]) == (3, 0)
