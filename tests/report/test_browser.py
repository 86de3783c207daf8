"""The generated page in headless Chromium: renders offline, without errors, every chart drawn."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from cgsync.report import build_report, write_report

if TYPE_CHECKING:
    from .conftest import SyncedLake

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


def _open(browser: Browser, page_path: Path, problems: list[str]) -> Page:
    """The page, offline: console errors, page errors and requests leaving it go to `problems`."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    def block_network(route: Route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            problems.append(f"request to {route.request.url}")
            route.abort()

    page.route("**/*", block_network)
    page.goto(page_path.as_uri(), wait_until="load")
    return page


def test_report_renders_offline_with_every_chart(
    browser: Browser, lake_path: Path, tmp_path: Path
) -> None:
    page_path = write_report(build_report(duckdb_path=lake_path), tmp_path / "report.html")
    problems: list[str] = []
    page = _open(browser, page_path, problems)
    page.wait_for_selector("#chart-funnel .main-svg")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "report.png", full_page=True)
    assert problems == []
    # 3 weekly bars and the NPS line; 5 funnel stages
    assert page.locator("#chart-over-time svg.main-svg .barlayer .point").count() == 3
    assert page.locator("#chart-over-time svg.main-svg .scatterlayer path.js-line").count() == 1
    assert page.locator("#chart-funnel svg.main-svg .barlayer .point").count() == 5
    assert page.locator("#segments tbody tr").count() == 6  # 4 countries, 2 divisions
    assert page.locator("#comments tbody tr").count() == 3
    assert page.locator("#chart-drivers svg.main-svg .barlayer .point").count() == 3
    assert page.locator("#drivers tbody tr").count() == 3
    assert page.locator("#chart-response-rate svg.main-svg .barlayer .point").count() == 2
    assert page.locator("#topics-detractors tbody tr").count() == 2
    assert page.locator("#topics-promoters tbody tr").count() == 3
    page.close()


def test_the_emulator_lake_renders_its_story_with_every_chart(
    browser: Browser, synced: SyncedLake, tmp_path: Path
) -> None:
    figures = build_report(duckdb_path=synced.path, timezone=synced.config.timezone)
    page_path = write_report(figures, tmp_path / "story.html")
    problems: list[str] = []
    page = _open(browser, page_path, problems)
    for chart in ("over-time", "drivers", "response-rate", "funnel"):
        page.wait_for_selector(f"#chart-{chart} .main-svg")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "report-emulator.png", full_page=True)
    assert problems == []
    months = len(figures.over_time)
    assert page.locator("#chart-over-time svg.main-svg .barlayer .point").count() == months
    assert page.locator("#chart-drivers svg.main-svg .barlayer .point").count() == 5
    rate_bars = page.locator("#chart-response-rate svg.main-svg .barlayer .point").count()
    assert rate_bars == 2 * len(figures.response_rate_by_month)
    month = synced.config.incident_month.strftime("%b %Y")
    assert f"Lowest month {month}:" in (page.locator("#lowest-period").text_content() or "")
    assert "Touchpoint = Support" in (page.locator("#worst-segment").text_content() or "")
    page.close()


def test_the_page_names_its_filters(browser: Browser, lake_path: Path, tmp_path: Path) -> None:
    figures = build_report(duckdb_path=lake_path, segment_filters=[("Country", "NL")])
    problems: list[str] = []
    page = _open(browser, write_report(figures, tmp_path / "nl.html"), problems)
    assert "filters: country = NL" in page.locator("header p").inner_text()
    assert problems == []
    page.close()


def test_a_period_without_data_renders_without_errors(
    browser: Browser, lake_path: Path, tmp_path: Path
) -> None:
    figures = build_report(duckdb_path=lake_path, since=date(2025, 1, 1), until=date(2025, 1, 31))
    problems: list[str] = []
    page = _open(browser, write_report(figures, tmp_path / "empty.html"), problems)
    assert page.locator(".main-svg").count() == 0
    # over time, drivers, response rate, funnel, comments
    assert page.locator("p.empty").count() == 5
    assert problems == []
    page.close()
