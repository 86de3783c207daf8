"""The CustomerGauge lake as a Dagster asset, synced hourly and reconciled weekly.

    pip install 'cgsync[dagster]'
    export CUSTOMERGAUGE_CLIENT_ID=... CUSTOMERGAUGE_CLIENT_SECRET=...   # the deployment's secrets
    dagster dev -f examples/dagster_customergauge.py

Each materialisation is one `cgsync.run_sync`, the runner behind `cgsync sync`: checkpoints,
the lake's lock, views and a row in the lake's run history. The credentials are `EnvVar`s, so
Dagster reads them from the code location's environment (Dagster+ secrets, a Kubernetes
Secret) when a run starts; they never enter run config, the UI or the event log. The lake
keeps its own cursors, so any worker can run the next sync; the `customergauge` pool (limit it
to 1: `dagster instance concurrency set customergauge 1`) keeps two runs from meeting at the
lake's lock (the second would fail with `SyncLockedError`).
"""

import os

import dagster as dg

import cgsync


class CustomerGaugeLake(dg.ConfigurableResource):
    """A CustomerGauge system and the lake that mirrors it."""

    client_id: str
    client_secret: str
    region: str = "eu"
    auth_url: str | None = None
    api_url: str | None = None
    source_timezone: str = "Europe/Amsterdam"
    destination: str = "duckdb"
    """`duckdb` (./cgsync.duckdb of the worker), a `*.duckdb` path, `postgres`, `filesystem`..."""
    dataset: str = "customergauge"
    table_format: str = "delta"

    def sync(self, *, reconcile: bool = False) -> cgsync.SyncSummary:
        options = cgsync.SyncOptions(
            client_id=self.client_id,
            client_secret=self.client_secret,
            region=self.region,
            auth_url=self.auth_url,
            api_url=self.api_url,
            source_timezone=self.source_timezone,
            reconcile=reconcile,
            lake=cgsync.Lake(
                self.destination,
                self.dataset,
                table_format=self.table_format,  # type: ignore[arg-type]
            ),
        )
        return cgsync.run_sync(options)


class SyncConfig(dg.Config):
    reconcile: bool = False
    """Walk everything again and delete what the API no longer lists (weekly)."""


@dg.asset(group_name="customergauge", kinds={"python"}, pool="customergauge")
def customergauge_lake(
    config: SyncConfig, customergauge: CustomerGaugeLake
) -> dg.MaterializeResult:
    """CustomerGauge responses and non-responses, exactly as the API lists them."""
    summary = customergauge.sync(reconcile=config.reconcile)
    return dg.MaterializeResult(
        metadata={
            "records": sum(resource.records for resource in summary.resources.values()),
            "removed": sum(resource.removed for resource in summary.resources.values()),
            "rows": summary.row_counts,
            "open_non_responses": summary.open_non_responses,
            "rejected_values": summary.rejected_values,
            "api_calls": summary.api_calls,
            "retries": sum(summary.retries.values()),
            "checkpoints": summary.checkpoints,
            "seconds": round(summary.seconds, 1),
        }
    )


hourly_sync = dg.define_asset_job("customergauge_hourly", selection=[customergauge_lake])
weekly_reconcile = dg.define_asset_job(
    "customergauge_weekly_reconcile",
    selection=[customergauge_lake],
    config={"ops": {"customergauge_lake": {"config": {"reconcile": True}}}},
)

resources = {
    "customergauge": CustomerGaugeLake(
        client_id=dg.EnvVar("CUSTOMERGAUGE_CLIENT_ID"),
        client_secret=dg.EnvVar("CUSTOMERGAUGE_CLIENT_SECRET"),
        # Host overrides are not secret (the emulator's, a proxy's): read when the code loads.
        auth_url=os.environ.get("CUSTOMERGAUGE_AUTH_URL"),
        api_url=os.environ.get("CUSTOMERGAUGE_API_URL"),
        destination=os.environ.get("CGSYNC_DESTINATION", "duckdb"),
    )
}

defs = dg.Definitions(
    assets=[customergauge_lake],
    jobs=[hourly_sync, weekly_reconcile],
    schedules=[
        dg.ScheduleDefinition(job=hourly_sync, cron_schedule="5 * * * *"),
        dg.ScheduleDefinition(job=weekly_reconcile, cron_schedule="35 3 * * 0"),
    ],
    resources=resources,
)
