"""The sync is exact under every reading of the vendor's pages that the emulator can play.

Values: the pages show dates as `yyyy-mm-dd hh:mm:ss` but promise no format, so every ISO
form must land as the same instant, and a value nobody can read must never stop the lake.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sync_lake import LakeReader, assert_exact, make_lake, sync_options

from cgsync import Lake, read_status, run_sync
from cgsync._checkpoints import ANSWER_PERIOD_REFUSED
from cgsync._client import ApiClient, Page
from cgsync._lake import build_pipeline
from cgsync.emulator import Emulator
from cgsync.emulator._variants import VARIANTS, variant_of
from cgsync.settings import REJECTED_VALUES_TABLE, SYNCED_AT_COLUMN

RESPONSE_TABLES = ("responses", "responses__tags", "responses__drivers", "responses__questions")
TABLES = (*RESPONSE_TABLES, "non_responses")
ZONE = "Europe/Amsterdam"
FIRST_CGID = 1_001  # the emulator's


@pytest.fixture(params=("duckdb", pytest.param("postgres", marks=pytest.mark.postgres)))
def lakes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Lake, Lake]]:
    with (
        make_lake(request.param, tmp_path / "plain") as plain,
        make_lake(request.param, tmp_path / "varied") as varied,
    ):
        yield plain, varied


def comparable(lake: Lake, table: str) -> list[tuple[Any, ...]]:
    """The rows of `table`, sorted, without the time they were synced."""
    names = build_pipeline(lake).default_schema.get_table_columns(table)
    columns = ", ".join(f'"{name}"' for name in names if name != SYNCED_AT_COLUMN)
    return sorted(LakeReader(lake).rows(f"SELECT {columns} FROM {{t}}", t=table), key=repr)


def test_every_form_of_a_value_loads_the_lake_the_plain_form_loads(
    emulator: Callable[..., Emulator], lakes: tuple[Lake, Lake]
) -> None:
    plain_lake, varied_lake = lakes
    plain = emulator(records=1_500, seed=3, timezone=ZONE)
    varied = emulator(records=1_500, seed=3, timezone=ZONE, value_variants=True)
    cgids = range(FIRST_CGID, FIRST_CGID + 1_500)
    assert {variant_of(cgid, 3) for cgid in cgids} == {*VARIANTS, None}

    run_sync(sync_options(plain, plain_lake, source_timezone=ZONE))
    summary = run_sync(sync_options(varied, varied_lake, source_timezone=ZONE))

    assert summary.rejected_values == 0
    for table in TABLES:
        assert comparable(varied_lake, table) == comparable(plain_lake, table), table
    assert_exact(LakeReader(varied_lake), varied.truth())


def test_a_value_nobody_can_read_is_null_kept_as_text_and_named_and_the_sync_goes_on(
    emulator: Callable[..., Emulator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = emulator(records=1_000)
    fetch = ApiClient.get_page
    odd: dict[str, Any] = {}

    def one_odd_date(self: ApiClient, endpoint: Any, **kwargs: Any) -> Page:
        page = fetch(self, endpoint, **kwargs)
        if endpoint.resource == "responses" and page.records and not odd:
            record = page.records[3]
            record["date_survey_response"] = "31/02/2024 25:61"
            odd.update(cgid=record["number_customergauge"])
        return page

    monkeypatch.setattr(ApiClient, "get_page", one_odd_date)
    with make_lake("duckdb", tmp_path) as lake, caplog.at_level(logging.WARNING, "cgsync"):
        summary = run_sync(sync_options(emu, lake, per_page=100))
        status = read_status(lake)
        reader = LakeReader(lake)

        assert_exact(reader, emu.truth())
        (answered,) = reader.rows(
            f"SELECT date_survey_response FROM {{t}} WHERE number_customergauge = {odd['cgid']}",
            t="responses",
        )
        rejected = reader.rows(
            'SELECT resource, number_customergauge, "column", raw_value FROM {t}',
            t=REJECTED_VALUES_TABLE,
        )

    assert answered == (None,)
    assert rejected == [("responses", odd["cgid"], "date_survey_response", "31/02/2024 25:61")]
    assert summary.rejected_values == status["rejected_values"] == 1
    assert REJECTED_VALUES_TABLE not in summary.row_counts
    [warning] = [r.getMessage() for r in caplog.records if "could not be read" in r.getMessage()]
    assert "responses" in warning and str(odd["cgid"]) in warning
    assert "date_survey_response" in warning


@pytest.mark.parametrize("parallel", [1, 2])
@pytest.mark.parametrize("order", ["answer", "record"])
def test_late_answers_reach_the_lake_whatever_the_order_of_the_listing(
    emulator: Callable[..., Emulator], tmp_path: Path, order: str, parallel: int
) -> None:
    emu = emulator(records=4_000, seed=5, history_days=20, responses_order=order)
    with make_lake("duckdb", tmp_path) as lake:
        run_sync(sync_options(emu, lake, parallel=parallel))
        for _ in range(3):
            emu.clock.advance(timedelta(hours=6))
            run_sync(sync_options(emu, lake, parallel=parallel))

        assert_exact(LakeReader(lake), emu.truth())


@pytest.mark.parametrize("parallel", [1, 2])
def test_an_api_that_refuses_the_answer_period_is_re_walked_from_the_ladder_and_exact(
    emulator: Callable[..., Emulator], tmp_path: Path, parallel: int
) -> None:
    emu = emulator(
        records=4_000, seed=6, history_days=20, responses_order="record", refuse_answer_period=True
    )
    options = {"parallel": parallel, "v6_lookback": timedelta(days=60)}  # answers take 45 days
    with make_lake("duckdb", tmp_path) as lake:
        first = run_sync(sync_options(emu, lake, **options))
        later = []
        for _ in range(3):
            emu.clock.advance(timedelta(hours=6))
            later.append(run_sync(sync_options(emu, lake, **options)))

        assert_exact(LakeReader(lake), emu.truth())
        state = build_pipeline(lake).state["sources"]["customergauge"]["resources"]["responses"]
    [note] = first.notes
    assert "refuses period[field]=date_survey_response" in note
    assert state[ANSWER_PERIOD_REFUSED] is True
    assert all(summary.resources["responses"].refresh_pages > 0 for summary in later)


@pytest.mark.parametrize("order", ["answer", "record"])
def test_edits_after_the_answer_reach_the_lake_within_the_refresh_window(
    emulator: Callable[..., Emulator], tmp_path: Path, order: str
) -> None:
    emu = emulator(records=3_000, seed=7, history_days=20, responses_order=order, edits=True)
    with make_lake("duckdb", tmp_path / "kept") as kept:
        run_sync(sync_options(emu, kept))
        for _ in range(4):
            emu.clock.advance(timedelta(hours=12))
            run_sync(sync_options(emu, kept))
        with make_lake("duckdb", tmp_path / "fresh") as fresh:
            run_sync(sync_options(emu, fresh))  # what a first load sees at the same time

            # (non_responses keeps answered invitations, with their last status, by design)
            for table in RESPONSE_TABLES:
                assert comparable(kept, table) == comparable(fresh, table), table
        reader = LakeReader(kept)
        edited = reader.rows(
            "SELECT count(*) FROM {t} WHERE comment LIKE '%(edited)'", t="responses"
        )
        tagged = reader.rows(
            "SELECT count(*) FROM {t} WHERE value = 'Follow-up'", t="responses__tags"
        )
    assert edited[0][0] > 0 and tagged[0][0] > 0, "the emulator made edits in the window"
