"""JSON responses in the real API's shapes (Laravel's for the API, OAuth2's for the token)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response

INVALID_MESSAGE = "The given data was invalid."


def json_response(
    payload: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(payload), status_code, headers, media_type="application/json")


class Respond(Exception):
    """Stop handling a request and answer with `response` (raised from dependencies)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class InvalidParameters(Exception):
    """Bad query parameters: answered with 422 and Laravel's error bag."""

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        super().__init__(", ".join(errors))
        self.errors = {name: list(messages) for name, messages in errors.items()}

    def response(self) -> Response:
        return json_response({"message": INVALID_MESSAGE, "errors": self.errors}, 422)


def unauthenticated() -> Response:
    return json_response({"message": "Unauthenticated."}, 401)


def laravel_name(location: Sequence[str | int]) -> str:
    """`("query", "period[field]")` -> `period.field`; `("query", "with[]", 0)` -> `with.0`."""
    parts = [str(part) for part in location[1:]] or ["request"]
    name = re.sub(r"\[(\w*)\]", lambda m: f".{m.group(1)}" if m.group(1) else "", parts[0])
    return ".".join([name, *parts[1:]])


def laravel_message(name: str, error: Mapping[str, Any]) -> str:
    """A Laravel-style sentence for one of pydantic's validation errors."""
    label = name.replace("_", " ")
    kind = str(error.get("type", ""))
    context = error.get("ctx") or {}
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return f"The {label} must be an integer."
    if kind == "greater_than_equal":
        return f"The {label} must be at least {context.get('ge')}."
    if kind == "less_than_equal":
        return f"The {label} must not be greater than {context.get('le')}."
    if kind in {"literal_error", "enum"}:
        return f"The selected {label} is invalid."
    if kind == "missing":
        return f"The {label} field is required."
    return f"The {label} is invalid."
