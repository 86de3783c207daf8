"""The admin API under /_admin: the handle's clock, truth, faults and stats over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from cgsync.emulator._errors import json_response
from cgsync.emulator._state import EmulatorState


def admin_router(state: EmulatorState) -> APIRouter:
    router = APIRouter(prefix="/_admin", include_in_schema=False)

    def clock_body() -> dict[str, Any]:
        return {"now": state.clock.now().isoformat(), "speed": state.clock.speed}

    @router.get("/clock")
    async def get_clock() -> Response:
        return json_response(clock_body())

    @router.post("/clock")
    async def move_clock(request: Request) -> Response:
        """Body `{"advance_seconds": 3600}` or `{"now": "2025-06-03T00:00:00+00:00"}`."""
        try:
            body = await _json_object(request)
            if "advance_seconds" in body:
                state.clock.advance(timedelta(seconds=float(body["advance_seconds"])))
            elif "now" in body:
                state.clock.set(datetime.fromisoformat(str(body["now"])))
            else:
                raise ValueError("give advance_seconds or now")
        except (TypeError, ValueError, OverflowError) as error:
            return json_response({"message": str(error)}, 422)
        return json_response(clock_body())

    @router.get("/truth")
    async def truth() -> Response:
        current = state.truth()
        return json_response(
            {
                "now": state.clock.now().isoformat(),
                "responses": sorted(current.responses),
                "non_responses": {
                    str(cgid): status for cgid, status in current.non_responses.items()
                },
                "date_sent": {
                    str(cgid): moment.isoformat() for cgid, moment in current.date_sent.items()
                },
            }
        )

    @router.get("/faults")
    async def get_faults() -> Response:
        return json_response(state.faults.settings.as_dict())

    @router.put("/faults")
    async def put_faults(request: Request) -> Response:
        try:
            updated = state.faults.update(**await _json_object(request))
        except (TypeError, ValueError) as error:
            return json_response({"message": str(error)}, 422)
        return json_response(updated.as_dict())

    @router.delete("/faults")
    async def clear_faults() -> Response:
        return json_response(state.faults.clear().as_dict())

    @router.post("/tokens/expire")
    async def expire_tokens() -> Response:
        state.faults.expire_tokens()
        return json_response({"expired": True})

    @router.get("/stats")
    async def stats() -> Response:
        return json_response(state.stats.snapshot())

    return router


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise TypeError("the body must be a JSON object")  # both callers answer it with a 422
    return body
