"""A faithful local CustomerGauge API: token endpoint, v7 and v6 listings, a clock, faults.

from cgsync.emulator import EmulatorConfig, start_emulator

with start_emulator(EmulatorConfig(records=2_000, seed=7)) as emu:
    emu.base_url, emu.clock.advance(timedelta(hours=6)), emu.truth()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cgsync._lazy import lazy_attributes

if TYPE_CHECKING:
    from cgsync.emulator._config import EmulatorConfig
    from cgsync.emulator._faults import FaultSettings
    from cgsync.emulator._population import Truth
    from cgsync.emulator._server import Emulator, start_emulator

__all__ = ["Emulator", "EmulatorConfig", "FaultSettings", "Truth", "start_emulator"]

# Imported on first use: the CLI imports this package at start-up and must stay quick.
_HOMES = {
    "Emulator": "cgsync.emulator._server",
    "start_emulator": "cgsync.emulator._server",
    "EmulatorConfig": "cgsync.emulator._config",
    "FaultSettings": "cgsync.emulator._faults",
    "Truth": "cgsync.emulator._population",
}


__getattr__ = lazy_attributes(__name__, _HOMES)
