"""The public API: the token endpoint and the three data listings."""

import asyncio
import base64
import binascii
from collections.abc import Iterable
from enum import Enum
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cgsync.emulator import settings
from cgsync.emulator._cursors import V6Cursor
from cgsync.emulator._errors import (
    InvalidParameters,
    Respond,
    json_response,
    laravel_message,
    laravel_name,
    unauthenticated,
)
from cgsync.emulator._faults import FaultDecision, FaultKind
from cgsync.emulator._listings import Filters
from cgsync.emulator._params import (
    CursorV7,
    NonResponseExpansions,
    NonResponsePeriodField,
    PerPageV7,
    ResponseExpansions,
    ResponsePeriodField,
    v7_filters,
)
from cgsync.emulator._state import EmulatorState


async def gate(request: Request) -> FaultDecision:
    """Injected faults first (as a proxy in front of the API would), then the token."""
    state: EmulatorState = request.app.state.emulator
    decision = state.faults.decide()
    if decision.latency_ms:
        await asyncio.sleep(decision.latency_ms / 1000)
    if decision.kind is FaultKind.TOO_MANY_REQUESTS:
        raise Respond(
            json_response(
                {"message": "Too Many Attempts."},
                429,
                {"Retry-After": str(decision.retry_after_seconds)},
            )
        )
    if decision.kind is FaultKind.SERVER_ERROR:
        raise Respond(json_response({"message": "Server Error"}, decision.status_code))
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not state.tokens.is_valid(token.strip()):
        raise Respond(unauthenticated())
    return decision


Gate = Annotated[FaultDecision, Depends(gate)]
NonResponseFilters = Annotated[Filters, Depends(v7_filters(NonResponsePeriodField))]
ResponseFilters = Annotated[Filters, Depends(v7_filters(ResponsePeriodField))]


def create_app(state: EmulatorState) -> FastAPI:
    """The emulator's ASGI app, serving both the auth host and the API host."""
    from cgsync.emulator._admin import admin_router

    app = FastAPI(
        title="CustomerGauge API emulator",
        version="7",
        docs_url=None,
        redoc_url=None,
        default_response_class=Response,
    )
    app.add_exception_handler(Respond, _respond)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidParameters, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_failed)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_middleware(_CountRequests, state=state)
    app.state.emulator = state

    @app.post(
        settings.TOKEN_PATH,
        summary="OAuth2 client-credentials token",
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "grant_type": {"type": "string"},
                                "client_id": {"type": "string"},
                                "client_secret": {"type": "string"},
                            },
                        }
                    }
                }
            }
        },
    )
    async def token(request: Request) -> Response:
        # The real server merges the query string and the form body.
        fields = dict(request.query_params)
        fields.update(parse_qsl((await request.body()).decode("utf-8", "replace")))
        client_id, client_secret = _basic_credentials(request.headers.get("authorization", ""))
        client_id = fields.get("client_id", client_id)
        client_secret = fields.get("client_secret", client_secret)
        if not state.tokens.credentials_match(client_id, client_secret):
            return json_response({"error": "invalid_client"}, 401)
        grant_type = fields.get("grant_type")
        if grant_type is None:
            return json_response({"error": "invalid_request"}, 400)
        if grant_type != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        ttl = state.faults.settings.token_ttl_seconds
        return json_response(
            {"access_token": state.tokens.issue(ttl), "token_type": "Bearer", "expires_in": ttl}
        )

    @app.get(settings.V7_NON_RESPONSES_PATH, summary="Non-responses, by internal key")
    async def v7_non_responses(
        decision: Gate,
        filters: NonResponseFilters,
        per_page: PerPageV7 = settings.DEFAULT_PER_PAGE,
        cursor: CursorV7 = None,
        expansions: NonResponseExpansions = [],  # noqa: B006
    ) -> Response:
        t = state.now()
        page = state.listings.non_responses(t, cursor or 0, per_page, filters)
        columns = state.population.columns(state.population.ensure(t), page.indexes)
        statuses = state.population.statuses(columns, t)
        data = state.vary(state.renderer.non_responses(columns, statuses, t, _values(expansions)))
        next_cursor = int(page.indexes[-1]) + 1 if len(data) else (cursor or 0)
        return _deliver({"data": data, "cursor": {"next": next_cursor}}, decision)

    @app.get(settings.V7_RESPONSES_PATH, summary="Responses, in the order they were answered")
    async def v7_responses(
        decision: Gate,
        filters: ResponseFilters,
        per_page: PerPageV7 = settings.DEFAULT_PER_PAGE,
        cursor: CursorV7 = None,
        expansions: ResponseExpansions = [],  # noqa: B006
    ) -> Response:
        t = state.now()
        page = state.listings.responses(t, cursor or 0, per_page, filters)
        columns = state.population.columns(state.population.ensure(t), page.indexes)
        data = state.vary(
            state.renderer.responses(columns, _values(expansions), state.edited_by(t))
        )
        next_cursor = int(page.positions[-1]) + 1 if len(data) else (cursor or 0)
        return _deliver({"data": data, "cursor": {"next": next_cursor}}, decision)

    async def v6_responses(
        decision: Gate,
        per_page: Annotated[
            int, Query(ge=1, le=settings.V6_MAX_PER_PAGE, description="Records per page, 1 to 400.")
        ] = settings.DEFAULT_PER_PAGE,
        cursor: Annotated[
            str | None, Query(description="Opaque cursor from the previous page.")
        ] = None,
    ) -> Response:
        try:
            position = V6Cursor.decode(cursor) if cursor is not None else None
        except ValueError:
            raise InvalidParameters({"cursor": ["The cursor is invalid."]}) from None
        t = state.now()
        backwards = position is not None and not position.points_to_next
        after = 0
        if position is not None:
            index = position.cgid - settings.CGID_OFFSET - 1
            after = max(0, index if backwards else index + 1)
        page = state.listings.responses_by_cgid(t, after, per_page + 1, backwards)
        has_more = len(page.indexes) > per_page
        indexes = page.indexes[:per_page]
        if backwards:
            indexes = indexes[::-1]
        columns = state.population.columns(state.population.ensure(t), indexes)
        data = state.renderer.responses(
            columns, settings.EXPANSIONS_V7_RESPONSES, state.edited_by(t)
        )
        links = _v6_links(data, position, has_more)
        return _deliver({"data": state.vary(data), "cursor": links}, decision)

    for path in settings.V6_RESPONSES_PATHS:
        app.get(path, summary="Responses, by CGID (v6)")(v6_responses)

    app.include_router(admin_router(state))
    return app


def _v6_links(
    data: list[dict[str, Any]], cursor: V6Cursor | None, has_more: bool
) -> dict[str, str | None]:
    """Laravel's CursorPaginator rules for the next and previous cursors."""
    if not data:
        return {"next": None, "previous": None}
    forward = cursor is None or cursor.points_to_next
    next_cursor = (
        None
        if forward and not has_more
        else V6Cursor(data[-1]["number_customergauge"], True).encode()
    )
    previous_cursor = (
        None
        if cursor is None or (not cursor.points_to_next and not has_more)
        else V6Cursor(data[0]["number_customergauge"], False).encode()
    )
    return {"next": next_cursor, "previous": previous_cursor}


def _values(choices: Iterable[Enum]) -> set[str]:
    return {str(choice.value) for choice in choices}


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        client_id, _, client_secret = base64.b64decode(encoded.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return client_id, client_secret


def _deliver(payload: dict[str, Any], decision: FaultDecision) -> Response:
    body = orjson.dumps(payload)
    cut = int(len(body) * decision.cut_fraction)
    if decision.kind is FaultKind.TRUNCATE:
        return Response(body[:cut], media_type="application/json")
    if decision.kind is FaultKind.DROP:
        return _DroppedResponse(body, cut)
    return Response(body, media_type="application/json")


class _DroppedResponse(Response):
    """Announces the whole body, sends part of it, then lets the server close the connection."""

    def __init__(self, body: bytes, cut: int) -> None:
        super().__init__(body, media_type="application/json")
        self._cut = cut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send(
            {"type": "http.response.body", "body": self.body[: self._cut], "more_body": True}
        )
        # Returning without the last body message makes the server drop the connection.


class _CountRequests:
    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self._app = app
        self._stats = state.stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self._stats.count(scope["path"])
        await self._app(scope, receive, send)


async def _respond(request: Request, exc: Respond) -> Response:
    return exc.response


async def _invalid(request: Request, exc: InvalidParameters) -> Response:
    return exc.response()


async def _validation_failed(request: Request, exc: RequestValidationError) -> Response:
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        name = laravel_name(error.get("loc", ()))
        errors.setdefault(name, []).append(laravel_message(name, error))
    return InvalidParameters(errors).response()


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 404:
        return json_response({"message": "Not Found"}, 404)
    if exc.status_code == 405:
        return json_response(
            {"message": f"The {request.method} method is not supported for this route."},
            405,
            exc.headers,
        )
    return json_response({"message": str(exc.detail)}, exc.status_code, exc.headers)
