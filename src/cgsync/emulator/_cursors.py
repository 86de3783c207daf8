"""The v6 cursor: Laravel's cursor pagination encoding (URL-safe base64 of a JSON object)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import orjson

_KEY = "number_customergauge"
_DIRECTION = "_pointsToNextItems"


@dataclass(frozen=True)
class V6Cursor:
    cgid: int
    points_to_next: bool

    def encode(self) -> str:
        payload = orjson.dumps({_KEY: self.cgid, _DIRECTION: self.points_to_next})
        return base64.urlsafe_b64encode(payload).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> V6Cursor:
        """Raises ValueError for anything that is not a cursor this API handed out."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            payload = orjson.loads(raw)
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            raise ValueError("not a cursor") from None
        if not isinstance(payload, dict):
            raise ValueError("not a cursor")  # noqa: TRY004 - bad input: the caller's 422
        cgid, direction = payload.get(_KEY), payload.get(_DIRECTION)
        if type(cgid) is not int or type(direction) is not bool or not 0 <= cgid < 2**53:
            raise ValueError("not a cursor")
        return cls(cgid, direction)
