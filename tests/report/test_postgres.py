"""The same figures from a PostgreSQL lake: the report reads any SQL destination dlt reads."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cgsync.report import build_report

pytestmark = pytest.mark.postgres


def test_postgres_gives_the_figures_duckdb_gives(postgres_lake: str, lake_path: Path) -> None:
    options = {"since": date(2026, 1, 5), "until": date(2026, 1, 31)}
    from_postgres = build_report(destination="postgres", dataset_name=postgres_lake, **options)
    from_duckdb = build_report(duckdb_path=lake_path, **options)
    assert from_postgres.headline.score.nps == -10  # see test_figures.py
    assert [p.score.nps for p in from_postgres.over_time] == [0, -100, pytest.approx(100 / 3), None]
    assert {**from_postgres.to_dict(), "generated_at": None} == {
        **from_duckdb.to_dict(), "generated_at": None
    }
