"""Same seed, same bytes; another seed, other data."""

from __future__ import annotations

from typing import Any

from cgsync.emulator import EmulatorConfig, start_emulator

from ._api import NON_RESPONSES, RESPONSES, V6_RESPONSES, ApiClient

PAGES: list[tuple[str, dict[str, Any]]] = [
    (NON_RESPONSES, {"per_page": 1000, "with[]": "properties"}),
    (RESPONSES, {"per_page": 1000, "with[]": ["properties", "drivers", "questions", "tags"]}),
    (V6_RESPONSES, {"per_page": 400}),
]


def served_bytes(config: EmulatorConfig) -> list[bytes]:
    with start_emulator(config) as emulator:
        api = ApiClient(emulator)
        try:
            return [api.get(path, **params).content for path, params in PAGES]
        finally:
            api.close()


def test_the_same_seed_serves_the_same_bytes() -> None:
    config = EmulatorConfig(records=5_000, seed=42)
    first = served_bytes(config)
    assert first == served_bytes(config)
    assert all(len(body) > 50_000 for body in first)


def test_another_seed_serves_other_data() -> None:
    first = served_bytes(EmulatorConfig(records=1_000, seed=1))
    second = served_bytes(EmulatorConfig(records=1_000, seed=2))
    assert all(a != b for a, b in zip(first, second, strict=True))
