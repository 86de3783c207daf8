"""The README's set-ups as they run: cron, and a container (a Kubernetes CronJob) that has
only environment variables and a destination, and keeps nothing between runs."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import dlt
import psycopg2
import pytest
from machines import Machine, connect, directory
from sync_lake import LakeReader, assert_exact, postgres_dsn

from cgsync import Lake
from cgsync.emulator import Emulator


def test_cron_runs_quietly_and_only_a_failure_writes_one_line(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    # cron's environment: a PATH, a HOME, and what the crontab sets.
    emu = emulator(records=1_500)
    here = directory(tmp_path / "srv")
    cron = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), **connect(emu)}

    for _ in range(3):
        run = machine.cgsync("sync", "--quiet", cwd=here, env=cron)
        assert (run.returncode, run.stdout, run.stderr) == (0, "", ""), "cron mails nothing"
        emu.clock.advance(timedelta(hours=1))
    assert_exact(LakeReader(Lake(str(here / "cgsync.duckdb"))), emu.truth())

    broken = machine.cgsync(
        "sync", "--quiet", cwd=here, env={**cron, "CUSTOMERGAUGE_CLIENT_SECRET": "expired-9f"}
    )
    assert broken.returncode == 3 and broken.stdout == ""
    assert broken.stderr.count("\n") == 1 and broken.stderr.startswith("error: ")
    assert "expired-9f" not in broken.stderr


@pytest.mark.postgres
def test_a_container_needs_only_its_environment_and_keeps_nothing_between_runs(
    emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    # The README's CronJob: Iceberg tables in object storage, their catalog in PostgreSQL.
    emu = emulator(records=2_000, seed=12)
    bucket = tmp_path / "bucket"  # object storage: outlives every container
    catalog = f"cgsync_test_{uuid.uuid4().hex[:10]}"
    uri = postgres_dsn().replace("postgresql://", "postgresql+psycopg2://", 1)
    environment = {
        **connect(emu),
        "DESTINATION__FILESYSTEM__BUCKET_URL": str(bucket),
        "ICEBERG_CATALOG__ICEBERG_CATALOG_NAME": catalog,
        "ICEBERG_CATALOG__ICEBERG_CATALOG_CONFIG": json.dumps(
            {"type": "sql", "uri": uri, "warehouse": f"file://{bucket}"}
        ),
    }
    try:
        for run in range(3):
            container = Machine(tmp_path / f"container-{run}" / "root")  # a fresh image
            workdir = directory(tmp_path / f"container-{run}" / "app")
            synced = container.cgsync(
                "sync", "--destination", "filesystem", "--table-format", "iceberg",
                "--log-format", "json",
                cwd=workdir, env=environment,
            )  # fmt: skip
            assert synced.returncode == 0, synced.stderr
            events = [json.loads(line) for line in synced.stderr.splitlines()]
            assert events[-1]["event"] == "sync_finished"
            read = events[-1]["summary"]["resources"]["non_responses"]["records"]
            if run == 0:
                first = read
            else:
                assert read < first / 10, "each run resumed from the lake's cursor"
            assert list(workdir.iterdir()) == [], "nothing in the working directory"
            emu.clock.advance(timedelta(hours=1))

        with psycopg2.connect(postgres_dsn()) as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_name FROM iceberg_tables WHERE catalog_name = %s", (catalog,)
            )
            assert {"responses", "non_responses"} <= {name for (name,) in cursor.fetchall()}
        os.environ.update(environment)  # the reader's catalog (conftest restores it)
        lake = Lake(
            dlt.destinations.filesystem(str(bucket)),
            pipelines_dir=str(tmp_path / "reader"),
            table_format="iceberg",
        )
        assert_exact(LakeReader(lake), emu.truth())
    finally:
        with psycopg2.connect(postgres_dsn()) as connection, connection.cursor() as cursor:
            for table in ("iceberg_tables", "iceberg_namespace_properties"):
                cursor.execute("SELECT to_regclass(%s)", (table,))
                if cursor.fetchone()[0]:  # none if the first run failed early
                    cursor.execute(f"DELETE FROM {table} WHERE catalog_name = %s", (catalog,))
