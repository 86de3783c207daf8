"""`edits`: responses change after the answer, at fixed delays, one in EDIT_EVERY per kind."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cgsync.emulator import settings

from ._api import RESPONSES, ApiClient, StartEmulator

ZONE = "Europe/Amsterdam"


def test_each_edit_shows_once_its_delay_after_the_answer_has_passed(
    emulator: StartEmulator,
) -> None:
    emu = emulator(records=3_000, seed=8, history_days=10, timezone=ZONE, edits=True)
    plain = emulator(records=3_000, seed=8, history_days=10, timezone=ZONE)
    expanded = {"with[]": ["tags"]}
    records = ApiClient(emu).walk(RESPONSES, **expanded)
    originals = {r["number_customergauge"]: r for r in ApiClient(plain).walk(RESPONSES, **expanded)}
    now = emu.clock.now()
    kinds = {
        0: ("comment", settings.COMMENT_EDIT_DELAY),
        1: ("follow_up", settings.FOLLOW_UP_EDIT_DELAY),
        2: ("tags", settings.TAG_EDIT_DELAY),
    }
    seen = {kind: [False, False] for kind in kinds}

    for record in records:
        index = record["number_customergauge"] - settings.CGID_OFFSET - 1
        answered = datetime.strptime(record["date_survey_response"], settings.DATE_FORMAT)
        age = now - answered.replace(tzinfo=ZoneInfo(ZONE))
        original = originals[record["number_customergauge"]]
        kind = index % settings.EDIT_EVERY
        for other, (name, _) in kinds.items():
            if other != kind:
                assert record[name] == original[name]
        if kind not in kinds:
            continue
        name, delay = kinds[kind]
        edited = age >= timedelta(seconds=delay)
        seen[kind][edited] = True
        expected = {
            "comment": (original["comment"] or "") + settings.EDITED_COMMENT_SUFFIX,
            "follow_up": settings.EDITED_FOLLOW_UP,
            "tags": [*original["tags"], settings.ADDED_TAG],
        }[name]
        assert record[name] == (expected if edited else original[name]), record

    assert all(both == [True, True] for both in seen.values()), seen
