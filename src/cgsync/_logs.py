"""The sync's log: events on the `cgsync` logger, and their JSON-lines form.

Every record a sync logs names its event (`sync_started`, `checkpoint`, `retry`, ...) and
carries that event's fields, so one call serves the human display (the message), an
orchestrator's log capture (plain `logging`) and `--log-format json` (`JsonLinesHandler`: one
object a line). The events and their fields are listed in docs/sync.md.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

logger = logging.getLogger("cgsync")

_REDACTED = "***"
_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)((?:client_secret|access_token|password)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"),
)
_MIN_SECRET_LENGTH = 4
"""Shorter values are not masked: they would mask ordinary words (a secret is longer)."""


def log_event(
    event: str, message: str, *args: Any, level: int = logging.INFO, **fields: Any
) -> None:
    """Log `message % args` as `event` with `fields` (JSON-serialisable values)."""
    logger.log(level, message, *args, extra={"event": event, "fields": fields})


class JsonLinesHandler(logging.Handler):
    """Writes each record as one JSON object on one line, secrets masked.

    The object has `time` (UTC, ISO 8601), `level`, `event` (`log` for records that name
    none, such as dlt's own), `logger`, `message` and the event's fields; a record with an
    exception has its one-line `error`. The handler formats records itself: dlt resets the
    formatter of the handler it finds on its logger whenever it sets up its runtime.
    """

    def __init__(self, stream: TextIO | None = None, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self._stream = stream
        self._secrets = sorted(
            {s for s in secrets if s and len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.render(record)
            stream = self._stream or sys.stderr  # the stream at write time (tests swap it)
            stream.write(line + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never stop a sync
            self.handleError(record)

    def render(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", "log"),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            entry["error"] = f"{type(error).__name__}: {' '.join(str(error).split())}"
        return orjson.dumps(self.redact(entry), default=str).decode()

    def redact(self, value: Any) -> Any:
        """`value` with every known secret, bearer token and secret-looking pair masked."""
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, _REDACTED)
            for pattern in _SECRET_PATTERNS:
                value = pattern.sub(lambda match: match.group(1) + _REDACTED, value)
            return value
        if isinstance(value, dict):
            return {key: self.redact(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact(item) for item in value]
        return value


def use_json_lines(*, level: int, secrets: Iterable[str | None] = ()) -> JsonLinesHandler:
    """Send the sync's log, dlt's and Python's warnings to stderr as JSON lines, alone."""
    handler = JsonLinesHandler(secrets=secrets)
    logging.captureWarnings(True)
    for name, name_level in (
        ("cgsync", level),
        ("dlt", max(level, logging.WARNING)),
        ("py.warnings", logging.WARNING),
    ):
        named = logging.getLogger(name)
        for existing in list(named.handlers):
            named.removeHandler(existing)
        named.addHandler(handler)
        named.setLevel(name_level)
        named.propagate = False
    return handler
