"""schemathesis against the app's own OpenAPI schema: no input yields a 5xx."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from cgsync.emulator import EmulatorConfig
from cgsync.emulator._app import create_app
from cgsync.emulator._state import EmulatorState

EXAMPLES_PER_OPERATION = 40

STATE = EmulatorState(EmulatorConfig(records=3_000, seed=1, history_days=90))
TOKEN = STATE.tokens.issue(ttl_seconds=86_400)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(STATE))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_no_input_yields_a_server_error(case: Any) -> None:
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code < 500, (case.path, case.query, response.text[:300])
    assert "application/json" in str(response.headers.get("content-type"))
