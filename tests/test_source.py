"""The dlt source on its own: cursors, checkpoints, the refresh window, the v6 ladder.

These tests drive `customergauge_source` with a small in-memory API (`ListingApi`), so that
each request it makes can be checked; the emulator-backed tests are in test_exactness.py.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import dlt
import pytest
from dlt.common.configuration.inject import get_fun_spec
from dlt.destinations.sql_jobs import SqlMergeFollowupJob
from sync_lake import merge_sql

from cgsync import ConfigError, Filters, SyncOptions, _dlt, customergauge_source
from cgsync._client import Page
from cgsync._endpoints import ENDPOINTS, Endpoint
from cgsync._pages import ReadAhead
from cgsync.settings import DEFAULT_CHECKPOINT_PAGES
from cgsync.source import ONE_RUN

AMSTERDAM = "Europe/Amsterdam"


def options(**changes: Any) -> SyncOptions:
    """The source's default options (a plain dlt pipeline's: one run walks to the end), with
    `changes`."""
    return replace(ONE_RUN, **changes)


def invitation(cgid: int, sent: datetime, status: str = "survey-sent") -> dict[str, Any]:
    return {
        "number_customergauge": cgid,
        "status": status,
        "date_creation": f"{sent:%Y-%m-%d %H:%M:%S}",
        "date_sent": f"{sent:%Y-%m-%d %H:%M:%S}",
        "contact": {"first_name": "Ann", "last_name": None},
        "properties": [{"field": "Country", "reference": "NL"}],
    }


def answer(cgid: int, created: datetime, tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "number_customergauge": cgid,
        "nps": cgid % 11,
        "date_creation": f"{created:%Y-%m-%d %H:%M:%S}",
        "date_survey_response": f"{created + timedelta(hours=1):%Y-%m-%d %H:%M:%S}",
        "follow_up": {"requested": False, "details": None},
        "tags": tags if tags is not None else ["Pricing"],
    }


class ListingApi:
    """Serves listings like the API: v7 by position with integer cursors, v6 by CGID.

    A v7 `period[...]` filter on `date_sent` selects by day (inclusive); every request is
    kept in `requests` as (resource, cursor, params).
    """

    api_url = "https://api.test.customergauge.invalid"
    client_id = "listing-api"

    def __init__(self, listings: Mapping[str, list[dict[str, Any]]]) -> None:
        self.listings = {name: list(records) for name, records in listings.items()}
        self.requests: list[tuple[str, Any, dict[str, Any]]] = []

    def get_page(
        self, endpoint: Endpoint, *, cursor: Any, per_page: int, params: Mapping[str, Any]
    ) -> Page:
        self.requests.append((endpoint.resource, cursor, dict(params)))
        records = self.listings[endpoint.resource]
        if endpoint.version == 6:
            after = int(cursor.removeprefix("after:")) if cursor else -1
            ordered = sorted(
                (r for r in records if r["number_customergauge"] > after),
                key=lambda r: r["number_customergauge"],
            )
            data = ordered[:per_page]
            more = len(ordered) > per_page
            next_cursor = f"after:{data[-1]['number_customergauge']}" if more else None
            return Page(records=data, cursor=cursor, next_cursor=next_cursor)
        if "period[field]" in params:
            field = params["period[field]"]
            start, end = params["period[start]"], params["period[end]"]
            records = [r for r in records if start <= r[field][:10] <= end]
        position = cursor or 0
        data = records[position : position + per_page]
        return Page(records=data, cursor=cursor, next_cursor=position + len(data))

    def cursors(self, resource: str) -> list[Any]:
        return [cursor for name, cursor, _ in self.requests if name == resource]


@pytest.fixture
def pipeline(tmp_path: Any) -> dlt.Pipeline:
    return dlt.pipeline(
        "test_source",
        destination=dlt.destinations.duckdb(str(tmp_path / "lake.duckdb")),
        dataset_name="customergauge",
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def walks(pipeline: dlt.Pipeline, resource: str) -> dict[str, Any]:
    return pipeline.state["sources"]["customergauge"]["resources"][resource]["walks"]


def rows(pipeline: dlt.Pipeline, query: str) -> list[tuple[Any, ...]]:
    with pipeline.sql_client() as sql:
        return [tuple(row) for row in sql.execute_sql(query)]


START = datetime(2024, 3, 1, 9, 0)


def test_a_checkpoint_stores_the_cursor_of_its_last_page_and_the_next_run_resumes(
    pipeline: dlt.Pipeline,
) -> None:
    api = ListingApi({"non_responses": [invitation(i, START) for i in range(1, 26)]})
    read_ahead = ReadAhead()

    def source() -> Any:
        return customergauge_source(
            options(endpoints=("non_responses",), per_page=10, checkpoint_pages=2),
            client=api,
            read_ahead=read_ahead,
        )

    pipeline.run(source())
    assert walks(pipeline, "non_responses")["all"]["cursor"] == 20
    assert walks(pipeline, "non_responses")["all"]["complete"] is False
    assert rows(pipeline, "select count(*) from non_responses") == [(20,)]

    pipeline.run(source())
    read_ahead.close()
    assert walks(pipeline, "non_responses")["all"]["complete"] is True
    # The pages after the checkpoint were read ahead while it loaded, and taken up, not re-read.
    assert api.cursors("non_responses") == [None, 10, 20, 25]
    assert rows(pipeline, "select count(*) from non_responses") == [(25,)]


def test_a_periodic_run_starts_from_the_stored_cursor_and_reads_only_new_records(
    pipeline: dlt.Pipeline,
) -> None:
    api = ListingApi({"responses": [answer(i, START) for i in range(1, 6)]})
    pipeline.run(customergauge_source(options(endpoints=("responses",)), client=api))
    api.listings["responses"].append(answer(99, START))
    api.requests.clear()

    pipeline.run(customergauge_source(options(endpoints=("responses",)), client=api))

    walked = [cursor for _, cursor, params in api.requests if "period[field]" not in params]
    refreshed = [params for _, _, params in api.requests if "period[field]" in params]
    assert walked == [5, 6]
    # Then the answers of the refresh window, which a listing by record key may hold behind.
    assert refreshed and {params["period[field]"] for params in refreshed} == {
        "date_survey_response"
    }
    assert rows(pipeline, "select max(number_customergauge), count(*) from responses") == [(99, 6)]


def test_child_tables_replace_the_rows_of_a_refetched_response(
    pipeline: dlt.Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOAD__DELETE_COMPLETED_JOBS", "false")  # the merge SQL is read below
    # dlt's own merge SQL until the source drops the key condition its merge key implies
    for name in ("_gen_key_table_clauses", "gen_merge_sql"):
        monkeypatch.setattr(SqlMergeFollowupJob, name, classmethod(_dlt._dlt_function(name)))
    api = ListingApi({"responses": [answer(1, START, tags=["Price", "Speed", "Staff"])]})
    pipeline.run(customergauge_source(options(endpoints=("responses",)), client=api))
    api.listings["responses"] = [answer(1, START, tags=["Price"])]

    pipeline.run(
        customergauge_source(options(endpoints=("responses",), full_refresh=True), client=api)
    )

    assert rows(pipeline, "select number_customergauge, position, value from responses__tags") == [
        (1, 0, "Price")
    ]
    merges = merge_sql(pipeline, "responses__tags")
    assert merges and not [merge for merge in merges if " OR " in merge]


def test_the_refresh_window_rereads_recent_invitations_in_the_systems_days(
    pipeline: dlt.Pipeline,
) -> None:
    # 23:30 in Amsterdam is 22:30 UTC: the window is counted in Amsterdam's days.
    sent = [START + timedelta(days=day, hours=14, minutes=30) for day in range(10)]
    api = ListingApi({"non_responses": [invitation(i, d) for i, d in enumerate(sent, start=1)]})

    def source() -> Any:
        return customergauge_source(
            options(endpoints=("non_responses",), source_timezone=AMSTERDAM), client=api
        )

    pipeline.run(source())
    first = [params for _, _, params in api.requests]
    assert all("period[field]" not in params for params in first), "the initial walk reads all"

    api.listings["non_responses"][8]["status"] = "bounced"  # sent 2024-03-09
    api.listings["non_responses"][2]["status"] = "bounced"  # sent 2024-03-03: outside
    api.requests.clear()
    pipeline.run(source())

    refresh = [params for _, _, params in api.requests if "period[field]" in params]
    assert refresh[0] == {
        "period[field]": "date_sent",
        "period[start]": "2024-03-07",
        "period[end]": "2024-03-11",
        "with[]": ["properties"],
    }
    statuses = dict(rows(pipeline, "select number_customergauge, status from non_responses"))
    assert statuses[9] == "bounced"
    assert statuses[3] == "survey-sent"


def test_refresh_window_zero_turns_the_refresh_off(pipeline: dlt.Pipeline) -> None:
    api = ListingApi({"non_responses": [invitation(1, START)]})
    for _ in range(2):
        pipeline.run(
            customergauge_source(
                options(endpoints=("non_responses",), refresh_window=timedelta(0)), client=api
            )
        )
    assert all("period[field]" not in params for _, _, params in api.requests)


def test_each_filter_combination_keeps_its_own_cursor(pipeline: dlt.Pipeline) -> None:
    api = ListingApi({"responses": [answer(i, START) for i in range(1, 4)]})
    pipeline.run(customergauge_source(options(endpoints=("responses",)), client=api))
    pipeline.run(
        customergauge_source(
            options(endpoints=("responses",), filters=Filters(outbound_filter="country-nl")),
            client=api,
        )
    )

    # Each walk keeps its own ladder too: where its responses are re-read from, should the
    # API refuse the refresh window's period.
    ladder = [[None, "2024-03-01T09:00:00+00:00"]]
    assert walks(pipeline, "responses") == {
        "all": {"cursor": 3, "complete": True, "phase": "done", "ladder": ladder},
        "outbound:country-nl": {"cursor": 3, "complete": True, "phase": "done", "ladder": ladder},
    }
    filtered = [params for _, _, params in api.requests if "outbound_filter" in params]
    walked = [params for params in filtered if "period[field]" not in params]
    assert [params["outbound_filter"] for params in walked] == ["country-nl", "country-nl"]
    assert len(filtered) > len(walked), "the refresh window keeps the filter too"


def v6_answers(days: int) -> list[dict[str, Any]]:
    """One answer a day; CGIDs in steps of 10 in the order of creation."""
    return [answer((day + 1) * 10, START + timedelta(days=day)) for day in range(days)]


def test_v6_keeps_the_cursor_of_its_last_page_when_next_is_null(pipeline: dlt.Pipeline) -> None:
    api = ListingApi({"responses_v6": v6_answers(12)})
    pipeline.run(customergauge_source(options(endpoints=("responses_v6",), per_page=5), client=api))

    walk = walks(pipeline, "responses_v6")["all"]
    assert api.cursors("responses_v6") == [None, "after:50", "after:100"]
    assert walk["cursor"] == "after:100"
    assert [cursor for cursor, _ in walk["ladder"]] == [None, "after:50", "after:100"]


def test_v6_periodic_runs_start_from_the_rung_older_than_the_lookback(
    pipeline: dlt.Pipeline,
) -> None:
    api = ListingApi({"responses_v6": v6_answers(30)})

    def source(**changes: Any) -> Any:
        return customergauge_source(
            options(
                endpoints=("responses_v6",), per_page=5, v6_lookback=timedelta(days=10), **changes
            ),
            client=api,
        )

    pipeline.run(source())
    # Late answers land behind the stored cursor (CGID order): one to an invitation created
    # on day 21, within the lookback of the newest (day 29), one to an invitation of day 5.
    api.listings["responses_v6"] += [
        answer(215, START + timedelta(days=21)),
        answer(55, START + timedelta(days=5)),
    ]
    api.requests.clear()

    pipeline.run(source())

    # The last page wholly older than day 19 is CGIDs 110-150, fetched by "after:100".
    assert api.cursors("responses_v6")[0] == "after:100"
    cgids = {cgid for (cgid,) in rows(pipeline, "select number_customergauge from responses_v6")}
    assert 215 in cgids, "the answer within the lookback is caught"
    assert 55 not in cgids, "the answer older than the lookback needs --full-refresh"

    pipeline.run(source(full_refresh=True))
    cgids = {cgid for (cgid,) in rows(pipeline, "select number_customergauge from responses_v6")}
    assert 55 in cgids


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"per_page": 1001}, "per_page 1001 is out of range for responses: use 1 to 1000"),
        ({"per_page": 500, "endpoints": ("responses_v6",)}, "use 1 to 400"),
        ({"endpoints": ("answers",)}, "unknown resource 'answers'"),
        ({"source_timezone": "Mars/Olympus"}, "--source-timezone"),
        ({"expansions": ("gossip",)}, "--with gossip"),
        ({"filters": Filters(since=date(2024, 1, 1))}, "--since and --until go together"),
        (
            {"filters": Filters(since=date(2024, 2, 1), until=date(2024, 1, 1))},
            "is after --until",
        ),
        (
            {"filters": Filters(period_field="date_sent")},
            "--period-field needs --since and --until",
        ),
        ({"checkpoint_pages": 0}, "--checkpoint-pages must be at least 1"),
        ({"refresh_window": timedelta(hours=-1)}, "--refresh-window must not be negative"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(
    arguments: dict[str, Any], message: str
) -> None:
    api = ListingApi({})
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        customergauge_source(options(**arguments), client=api)
    assert api.requests == []


def test_missing_credentials_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCES__CUSTOMERGAUGE__CLIENT_ID", raising=False)
    monkeypatch.delenv("SOURCES__CUSTOMERGAUGE__CLIENT_SECRET", raising=False)
    with pytest.raises(
        ConfigError, match="CUSTOMERGAUGE_CLIENT_ID and CUSTOMERGAUGE_CLIENT_SECRET"
    ):
        customergauge_source()


def test_in_your_own_pipeline_credentials_and_hosts_come_from_dlt_config(
    emulator: Any, pipeline: dlt.Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = emulator(records=500)
    monkeypatch.setenv("SOURCES__CUSTOMERGAUGE__CLIENT_ID", emu.client_id)
    monkeypatch.setenv("SOURCES__CUSTOMERGAUGE__CLIENT_SECRET", emu.client_secret)
    monkeypatch.setenv("SOURCES__CUSTOMERGAUGE__AUTH_URL", emu.token_url)
    monkeypatch.setenv("SOURCES__CUSTOMERGAUGE__API_URL", emu.base_url)

    pipeline.run(customergauge_source())

    truth = emu.truth()
    assert rows(pipeline, "select count(*) from responses") == [(len(truth.responses),)]
    assert rows(pipeline, "select count(*) from non_responses") == [(len(truth.non_responses),)]


def test_the_options_credentials_and_hosts_win_over_dlt_config(
    emulator: Any, pipeline: dlt.Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = emulator(records=100)
    monkeypatch.setenv("SOURCES__CUSTOMERGAUGE__CLIENT_ID", "stale-client")
    monkeypatch.setenv("SOURCES__CUSTOMERGAUGE__CLIENT_SECRET", "stale-secret")
    monkeypatch.setenv("SOURCES__CUSTOMERGAUGE__API_URL", "https://api.stale.invalid")
    # Not a config value: dlt resolves the connection only, never the options.
    monkeypatch.setenv("SOURCES__CUSTOMERGAUGE__OPTIONS", "{not options")
    connection = options(
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        auth_url=emu.token_url,
        api_url=emu.base_url,
    )

    pipeline.run(customergauge_source(connection))

    truth = emu.truth()
    assert rows(pipeline, "select count(*) from responses") == [(len(truth.responses),)]
    assert rows(pipeline, "select count(*) from non_responses") == [(len(truth.non_responses),)]


def test_dlt_config_resolves_only_the_connection() -> None:
    spec = get_fun_spec(customergauge_source)
    assert list(spec.get_resolvable_fields()) == [
        "client_id",
        "client_secret",
        "region",
        "auth_url",
        "api_url",
    ]


def test_the_sources_parameters_are_the_options_the_connection_and_the_runtime() -> None:
    """The public signature: what to sync is one SyncOptions (docs/sync.md)."""
    assert list(inspect.signature(customergauge_source).parameters) == [
        "options",
        "client_id",
        "client_secret",
        "region",
        "auth_url",
        "api_url",
        "client",
        "read_ahead",
        "on_page",
        "on_refresh_page",
        "table_format",
        "staging_deduplicated",
    ]


def test_without_options_one_run_of_the_source_walks_to_the_end(
    pipeline: dlt.Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One record a page: more pages than a checkpoint of SyncOptions' defaults holds.
    for name in ("responses", "non_responses"):
        monkeypatch.setitem(ENDPOINTS, name, replace(ENDPOINTS[name], page_limit=1))
    records = DEFAULT_CHECKPOINT_PAGES + 5
    api = ListingApi(
        {"responses": [], "non_responses": [invitation(i, START) for i in range(1, records + 1)]}
    )

    pipeline.run(customergauge_source(client=api))

    assert walks(pipeline, "non_responses")["all"]["complete"] is True
    assert rows(pipeline, "select count(*) from non_responses") == [(records,)]
    assert ONE_RUN == replace(SyncOptions(), checkpoint_pages=None, checkpoint_seconds=None)
