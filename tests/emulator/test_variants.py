"""`value_variants`: the same records, printed in every form the vendor's pages allow."""

from __future__ import annotations

import re

from cgsync.emulator._variants import variant_of

from ._api import NON_RESPONSES, RESPONSES, ApiClient, StartEmulator, cgids

FORMS = {
    "iso-t": r'"date_creation":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"',
    "utc-z": r'"date_creation":"[^"]+:\d\dZ"',
    "offset": r'"date_creation":"[^"]+\+0[12]:00"',
    "other-offset": r'"date_creation":"[^"]+\+05:30"',
    "fraction": r'"date_creation":"[^"]+ \d\d:\d\d:\d\d\.000"',
    "utc-fraction-z": r'"date_creation":"[^"]+\.000000Z"',
    "empty-dates": r'"date_opened":""',
    "zero-dates": r'"date_opened":"0000-00-00 00:00:00"',
    "numbers-as-strings": r'"number_customergauge":"\d+"',
}


def test_each_variant_prints_its_form_and_the_records_stay_the_same(
    emulator: StartEmulator,
) -> None:
    plain, varied = (
        emulator(records=800, seed=4),
        emulator(records=800, seed=4, value_variants=True),
    )
    plain_api, varied_api = ApiClient(plain), ApiClient(varied)

    for path in (RESPONSES, NON_RESPONSES):
        assert [int(c) for c in cgids(varied_api.walk(path))] == cgids(plain_api.walk(path))
    assert len(varied_api.walk_v6()) == len(plain_api.walk_v6())
    expanded = {"with[]": ["tags", "drivers", "questions", "properties"]}
    text = (
        varied_api.get(NON_RESPONSES, per_page=1000).text
        + varied_api.get(RESPONSES, per_page=1000, **expanded).text
    )
    for name, form in FORMS.items():
        assert re.search(form, text), name
    missing = [
        r
        for r in varied_api.walk(NON_RESPONSES)
        if variant_of(int(r["number_customergauge"]), 4) == "fields-missing"
    ]
    assert missing and all(None not in record.values() for record in missing)
    assert re.search(r'"tags":null', text), "null lists"
