"""`erasures`: a share of records vanish from every listing, and from truth(), some days after
they were sent (an erasure at the source, as under the GDPR)."""

from __future__ import annotations

from datetime import timedelta

from cgsync.emulator import settings

from ._api import NON_RESPONSES, RESPONSES, ApiClient, StartEmulator, cgids


def test_an_erased_record_is_gone_from_every_listing_and_from_the_truth(
    emulator: StartEmulator,
) -> None:
    kept = emulator(records=2_000, seed=12, history_days=30)
    erasing = emulator(records=2_000, seed=12, history_days=30, erasures=0.1)
    everything, api = ApiClient(kept), ApiClient(erasing)

    def listed(client: ApiClient) -> dict[str, set[int]]:
        return {
            "responses": set(cgids(client.walk(RESPONSES))),
            "non_responses": set(cgids(client.walk(NON_RESPONSES))),
            "v6": set(cgids(client.walk_v6())),
        }

    before = listed(api)
    truth = erasing.truth()
    gone = set(truth.date_sent).symmetric_difference(kept.truth().date_sent)
    assert 100 < len(gone) < 300, "about a tenth of the records"
    for name, cgid_set in listed(everything).items():
        assert before[name] == cgid_set - gone, name
    assert gone.isdisjoint(truth.responses) and gone.isdisjoint(truth.non_responses)

    sent_last = max(truth.date_sent.values())
    erasing.clock.set(sent_last + timedelta(seconds=settings.ERASE_AFTER + 1))
    kept.clock.set(sent_last + timedelta(seconds=settings.ERASE_AFTER + 1))
    later = erasing.truth()
    newly_gone = set(truth.date_sent) - set(later.date_sent)
    assert newly_gone, "the newest records are erased once their days have passed"
    assert all(cgid not in listed(api)[name] for name in before for cgid in newly_gone)
