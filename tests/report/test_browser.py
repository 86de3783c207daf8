"""The generated page in headless Chromium: renders offline, without errors, every chart drawn."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cgsync.report import build_report, write_report

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

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


def test_report_renders_offline_with_every_chart(browser, lake_path: Path, tmp_path: Path) -> None:
    page_path = write_report(build_report(duckdb_path=lake_path), tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    outside: list[str] = []

    def block_network(route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", block_network)
    page.goto(page_path.as_uri(), wait_until="load")
    page.wait_for_selector("#chart-funnel .main-svg")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "report.png", full_page=True)
    assert problems == []
    assert outside == []
    # 3 weekly bars and the NPS line; 5 funnel stages
    assert page.locator("#chart-over-time svg.main-svg .barlayer .point").count() == 3
    assert page.locator("#chart-over-time svg.main-svg .scatterlayer path.js-line").count() == 1
    assert page.locator("#chart-funnel svg.main-svg .barlayer .point").count() == 5
    assert page.locator("#segments tbody tr").count() == 6  # 4 countries, 2 divisions
    assert page.locator("#comments tbody tr").count() == 3
    page.close()
