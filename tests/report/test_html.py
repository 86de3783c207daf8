"""The page's content, read as text."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

from cgsync.report import build_report, render_html


def test_lake_text_is_escaped(lake_path: Path) -> None:
    page = render_html(build_report(duckdb_path=lake_path))
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Umbrella &amp; Co" in page


def test_page_is_self_contained(lake_path: Path) -> None:
    page = render_html(build_report(duckdb_path=lake_path))
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=", page)
    assert "<link" not in page
    assert "@import" not in page
    assert page.count("Plotly.newPlot(") == 4  # over time, drivers, response rate, funnel


def test_headline_cards_show_the_figures(lake_path: Path) -> None:
    page = render_html(build_report(duckdb_path=lake_path))
    cards = dict(re.findall(r'<div class="label">([^<]+)</div><div class="value">([^<]+)<', page))
    assert cards == {
        "NPS": "-10",
        "Responses": "10",
        "Invitations": "15",
        "Response rate": "66.7%",
        "Failure rate": "13.3%",
    }
    assert "4 promoters · 1 passive · 5 detractors" in page
    assert "10 of 15 sent in the period answered" in page


def test_segment_rows_carry_n_nps_and_the_too_few_mark(make_lake) -> None:
    answered = datetime(2026, 2, 2, tzinfo=UTC)
    rows = [
        {
            "number_customergauge": cgid,
            "nps": 10 if cgid % 2 else 0,
            "date_survey_response": answered,
            "properties__key_contact": "Yes" if cgid < 30 else "No",
        }
        for cgid in range(40)
    ]
    page = render_html(build_report(duckdb_path=make_lake(rows, [])))
    trusted, few = re.findall(
        r"<tr class=\"(few)?\"><td>(\w+)(.*?)</td>"
        r"<td class=\"num\">(\d+)</td><td class=\"num ?\w*\">([^<]+)<",
        page,
    )
    # Yes: 0..29, 15 odd (promoters) and 15 even (detractors); No: 30..39, 5 and 5
    assert trusted == ("", "Yes", "", "30", "0")
    assert few[:2] == ("few", "No") and "too few" in few[2] and few[3:] == ("10", "0")
    assert "<h3>Key contact <code>properties__key_contact</code></h3>" in page


def test_a_period_without_responses_says_so(lake_path: Path) -> None:
    figures = build_report(duckdb_path=lake_path, since=date(2025, 1, 1), until=date(2025, 1, 31))
    page = render_html(figures)
    assert "Period: 01 Jan 2025 – 31 Jan 2025" in page
    assert "No responses in this period." in page
    assert "No invitations sent in this period." in page
    assert "No detractor comments in this period." in page
    assert page.count("no values in this period") == 2  # country, division
    assert "Plotly.newPlot(" not in page


def test_a_segment_shows_its_25_largest_values_and_counts_the_rest(make_lake) -> None:
    answered = datetime(2026, 2, 2, tzinfo=UTC)
    rows = [  # manager m00 answers once, m01 twice, ... m26 27 times
        {
            "number_customergauge": 100 * size + answer,
            "nps": 9,
            "date_survey_response": answered,
            "properties__account_manager": f"m{size - 1:02d}",
        }
        for size in range(1, 28)
        for answer in range(size)
    ]
    page = render_html(build_report(duckdb_path=make_lake(rows, [])))
    assert "… 2 more values (3 responses)" in page  # m00 (1) and m01 (2)
    assert "<td>m02 " in page
    assert "<td>m01 " not in page
