"""The CustomerGauge lake in Airflow: synced hourly, reconciled weekly.

Put this file in the DAGs folder of an Airflow (2.7+ or 3) where cgsync is installed, and add
the credentials as the Airflow connection `customergauge` from the secrets backend, e.g.

    AIRFLOW_CONN_CUSTOMERGAUGE='{"conn_type": "generic",
        "login": "<client id>", "password": "<client secret>",
        "extra": {"region": "eu", "source_timezone": "Europe/Amsterdam",
                  "destination": "postgres", "dataset": "customergauge"}}'

(`extra` may also set `auth_url` and `api_url`.) The destination's own credentials come from
dlt's usual environment variables or `.dlt/secrets.toml` on the workers, e.g.
`DESTINATION__POSTGRES__CREDENTIALS`. Each run is one `cgsync.run_sync`, the runner behind
`cgsync sync`: checkpoints, the lake's lock, views and a row in the lake's run history. The
lake keeps its own cursors, so any worker can take the next run. `max_active_runs=1` and the
`customergauge` pool (create it with one slot) keep two syncs from meeting at the lake's lock.
The task returns counts only: the secret never reaches XCom or the task log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

try:  # Airflow 3
    from airflow.sdk import BaseHook, dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
    from airflow.hooks.base import BaseHook

import cgsync

CONNECTION_ID = "customergauge"
POOL = "customergauge"
DEFAULTS: dict[str, Any] = {"retries": 2, "retry_delay": timedelta(minutes=10)}


def sync_customergauge(*, reconcile: bool = False) -> dict[str, Any]:
    """One sync with the credentials of the `customergauge` connection; its counts."""
    connection = BaseHook.get_connection(CONNECTION_ID)
    extra = connection.extra_dejson
    options = cgsync.SyncOptions(
        client_id=connection.login,
        client_secret=connection.password,
        region=extra.get("region"),
        auth_url=extra.get("auth_url"),
        api_url=extra.get("api_url"),
        source_timezone=extra.get("source_timezone", "Europe/Amsterdam"),
        reconcile=reconcile,
        lake=cgsync.Lake(extra.get("destination", "duckdb"), extra.get("dataset", "customergauge")),
    )
    summary = cgsync.run_sync(options)
    return {
        "outcome": summary.outcome,
        "records": {name: resource.records for name, resource in summary.resources.items()},
        "removed": {name: resource.removed for name, resource in summary.resources.items()},
        "rows": summary.row_counts,
        "open_non_responses": summary.open_non_responses,
        "api_calls": summary.api_calls,
        "seconds": round(summary.seconds, 1),
    }


def customergauge_dag(dag_id: str, schedule: str, *, reconcile: bool, doc: str) -> Any:
    """A DAG of one task, `reconcile` or `sync`, on `schedule`."""

    @dag(
        dag_id=dag_id,
        schedule=schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULTS,
        tags=["customergauge"],
        doc_md=doc,
    )
    def customergauge() -> None:
        @task(task_id="reconcile" if reconcile else "sync", pool=POOL)
        def run() -> dict[str, Any]:
            return sync_customergauge(reconcile=reconcile)

        run()

    return customergauge()


hourly = customergauge_dag(
    "customergauge_hourly",
    "5 * * * *",
    reconcile=False,
    doc="Sync CustomerGauge responses and non-responses into the lake, every hour.",
)
weekly_reconcile = customergauge_dag(
    "customergauge_weekly_reconcile",
    "35 3 * * 0",
    reconcile=True,
    doc="Walk everything again and delete from the lake what the API no longer lists.",
)
