"""`--log-format json`: one JSON object a line on stderr, documented events, no secret."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest
from machines import Machine, connect
from sync_lake import EVERY_FAULT

from cgsync._logs import JsonLinesHandler, log_event, use_json_lines
from cgsync.emulator import Emulator

DOCS = Path(__file__).parents[1] / "docs" / "sync.md"


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of `text` as JSON (fails on the first that is not)."""
    return [json.loads(line) for line in text.splitlines()]


def documented_events() -> set[str]:
    """The events named in the table of docs/sync.md's "Logs for machines" section."""
    section = DOCS.read_text().split("## Logs for machines", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """The loggers `use_json_lines` changes are put back as they were."""
    saved = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level)
        for name in ("cgsync", "dlt", "py.warnings")
    }
    yield
    logging.captureWarnings(False)
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)


def test_a_sync_under_faults_logs_json_lines_with_documented_events_and_no_secret(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    emu = emulator(records=2_500, seed=3, erasures=0.0)
    emu.faults.update(**EVERY_FAULT)

    synced = machine.cgsync(
        "sync", "--log-format", "json", "--per-page", "250", "--checkpoint-pages", "2",
        cwd=tmp_path, env=connect(emu),
    )  # fmt: skip

    assert synced.returncode == 0, synced.stderr
    assert synced.stdout == "", "stdout carries only the --json summary"
    events = json_lines(synced.stderr)
    names = [event["event"] for event in events]
    assert names[0] == "sync_started" and names[-1] == "sync_finished"
    assert {"retry", "checkpoint"} <= set(names)
    assert set(names) <= documented_events(), "an event docs/sync.md does not list"
    assert all({"time", "level", "event", "message"} <= set(event) for event in events)
    retry = next(event for event in events if event["event"] == "retry")
    assert {"path", "cursor", "reason", "retry", "delay_seconds"} <= set(retry)
    finished = events[-1]["summary"]
    assert finished["outcome"] == "ok"
    assert finished["resources"]["responses"]["records"] >= len(emu.truth().responses)
    checkpoints = [event for event in events if event["event"] == "checkpoint"]
    assert [c["checkpoint"] for c in checkpoints] == list(range(1, len(checkpoints) + 1))
    assert checkpoints[-1]["resources"]["non_responses"]["complete"] is True

    tokens = emu.issued_tokens()
    assert len(tokens) > 1, "the tokens expired and were renewed during the sync"
    for secret in (emu.client_secret, *tokens):
        assert secret not in synced.stderr


def test_a_failure_ends_with_an_error_event_and_its_exit_code(
    emulator: Callable[..., Emulator], machine: Machine, tmp_path: Path
) -> None:
    emu = emulator(records=100)
    wrong = "not-the-secret-8c1e"

    refused = machine.cgsync(
        "sync", "--log-format", "json", "--json",
        cwd=tmp_path, env=connect(emu, CUSTOMERGAUGE_CLIENT_SECRET=wrong),
    )  # fmt: skip

    assert refused.returncode == 3
    events = json_lines(refused.stderr)
    assert events[-1]["event"] == "error" and events[-1]["exit_code"] == 3
    assert "refused the credentials" in events[-1]["message"]
    assert {event["event"] for event in events} <= documented_events()
    assert wrong not in refused.stderr + refused.stdout


def test_bad_usage_is_one_json_error_line(machine: Machine, tmp_path: Path) -> None:
    bad = machine.cgsync(
        "sync", "--log-format", "json", "--since", "yesterday",
        cwd=tmp_path, env={"CUSTOMERGAUGE_CLIENT_ID": "a", "CUSTOMERGAUGE_CLIENT_SECRET": "b"},
    )  # fmt: skip

    assert bad.returncode == 2
    (event,) = json_lines(bad.stderr)
    assert event["event"] == "error" and "--since" in event["message"]


def test_an_unknown_log_format_is_refused(machine: Machine, tmp_path: Path) -> None:
    bad = machine.cgsync("sync", "--log-format", "xml", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: unknown --log-format 'xml': use human or json"


def test_dlt_and_python_warnings_become_json_lines_too(
    logging_restored: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_json_lines(level=logging.INFO, secrets=["s3cr3t-value"])
    # dlt sets up its logger when a pipeline starts: the JSON handler must survive that.
    dlt.pipeline("logs_test", destination="duckdb", pipelines_dir=str(tmp_path))
    from dlt.common import logger as dlt_logger

    dlt_logger.warning("dlt says the key is s3cr3t-value")
    import warnings

    warnings.warn("a library is deprecated", DeprecationWarning, stacklevel=1)
    log_event("checkpoint", "checkpoint %d", 1, checkpoint=1)

    lines = json_lines(capsys.readouterr().err)
    assert [line["logger"] for line in lines] == ["dlt", "py.warnings", "cgsync"]
    assert lines[0]["message"] == "dlt says the key is ***"
    assert lines[2] == {**lines[2], "event": "checkpoint", "checkpoint": 1, "level": "info"}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Authorization: Bearer abc.DEF-123_x", "Authorization: Bearer ***"),
        ("client_secret=hunter2hunter&x=1", "client_secret=***&x=1"),
        ('{"access_token": "tok-123"}', '{"access_token": "***"}'),
        ("the secret is pssst-9", "the secret is ***"),
        ("nothing to hide", "nothing to hide"),
    ],
)
def test_secrets_are_masked_wherever_they_appear(text: str, shown: str) -> None:
    handler = JsonLinesHandler(io.StringIO(), secrets=["pssst-9", None, "ab"])
    assert handler.redact({"message": text, "nested": [text]}) == {
        "message": shown,
        "nested": [shown],
    }
