"""The peer: dlt's generic `rest_api` source over the v7 sync endpoints, as a data engineer
would configure it without cgsync.

OAuth2 client credentials, a cursor paginator that follows `cursor.next` and stops on the first
empty page, the endpoints' largest page and every expansion a default `cgsync sync` asks for,
and a merge on the CGID into a DuckDB file. dlt unpacks the nested fields into child tables
itself. Run as a child process by `python -m benchmarks --peers`, with the emulator's URLs and
credentials in the environment (as `cgsync sync` takes them); prints
`{"read": ..., "lake_rows": ...}`: the records dlt extracted, and the distinct CGIDs it left in
the top tables.

    python -m benchmarks.peers --workdir DIR
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from cgsync._endpoints import ENDPOINTS
from cgsync.settings import (
    DEFAULT_RESOURCES,
    ENV_API_URL,
    ENV_AUTH_URL,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
)

CGID = "number_customergauge"
PIPELINE_NAME = "customergauge_rest_api"


def rest_api_config(
    api_url: str, token_url: str, client_id: str, client_secret: str
) -> dict[str, Any]:
    """The `rest_api` configuration: one resource per default endpoint."""
    from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
    from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator

    resources = []
    for name in DEFAULT_RESOURCES:
        endpoint = ENDPOINTS[name]
        resources.append(
            {
                "name": name,
                "endpoint": {
                    "path": endpoint.path.lstrip("/"),
                    "params": {
                        "per_page": endpoint.page_limit,
                        "with[]": list(endpoint.expansions),
                    },
                },
            }
        )
    return {
        "client": {
            "base_url": api_url.rstrip("/") + "/",
            "auth": OAuth2ClientCredentials(
                access_token_url=token_url, client_id=client_id, client_secret=client_secret
            ),
            "paginator": JSONResponseCursorPaginator(
                cursor_path="cursor.next", cursor_param="cursor", stop_after_empty_page=True
            ),
        },
        "resource_defaults": {
            "primary_key": CGID,
            "write_disposition": "merge",
            "endpoint": {"data_selector": "data"},
        },
        "resources": resources,
    }


def run_peer(workdir: Path) -> dict[str, int]:
    """Load every record into `workdir/peer.duckdb`; the records read and the rows left."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    config = rest_api_config(
        os.environ[ENV_API_URL],
        os.environ[ENV_AUTH_URL],
        os.environ[ENV_CLIENT_ID],
        os.environ[ENV_CLIENT_SECRET],
    )
    pipeline = dlt.pipeline(
        PIPELINE_NAME,
        destination=dlt.destinations.duckdb(str(workdir / "peer.duckdb")),
        pipelines_dir=str(workdir / "pipelines"),
        dataset_name="customergauge",
    )
    pipeline.run(rest_api_source(config))
    read = sum(
        pipeline.last_trace.last_normalize_info.row_counts.get(name, 0)
        for name in DEFAULT_RESOURCES
    )
    with pipeline.sql_client() as sql:
        lake_rows = sum(
            sql.execute_sql(f"SELECT count(DISTINCT {CGID}) FROM {name}")[0][0]
            for name in DEFAULT_RESOURCES
        )
    return {"read": read, "lake_rows": lake_rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="where the DuckDB file goes")
    args = parser.parse_args(argv)
    missing = [
        name
        for name in (ENV_API_URL, ENV_AUTH_URL, ENV_CLIENT_ID, ENV_CLIENT_SECRET)
        if not os.environ.get(name)
    ]
    if missing:
        sys.exit(f"error: set {', '.join(missing)} for the peer")
    # As the sync's own process: no dlt telemetry (there is no network here to send it to).
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    args.workdir.mkdir(parents=True, exist_ok=True)
    sys.stdout.write(orjson.dumps(run_peer(args.workdir)).decode() + "\n")


if __name__ == "__main__":
    main()
