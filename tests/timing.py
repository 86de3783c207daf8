"""Time in tests without wall-clock deadlines.

- `wait_until` polls for a condition; its cap only turns a hang into a failure.
- `hold_request` keeps the emulator's Nth data request unanswered until the test lets it go:
  the process that sent it is then surely still running, at a known point of its work.
- `paused` stops a process (SIGSTOP) so that it cannot move on while the test acts.
- `FakeClock` is a monotonic clock that moves only when told.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cgsync.emulator import Emulator
from cgsync.emulator._faults import FaultDecision

CAP_SECONDS = 120.0
"""How long a wait may last before the test fails as hung (never reached on a sound run)."""


def wait_until(condition: Callable[[], object], *, what: str, cap: float = CAP_SECONDS) -> None:
    """Return once `condition()` is true; fail if it is still false after `cap` seconds."""
    give_up = time.monotonic() + cap
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"still waiting for {what} after {cap:.0f} s")
        time.sleep(0.01)


class FakeClock:
    """A monotonic clock (a callable returning seconds) that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class HeldRequest:
    """The emulator's held data request: `reached` once it arrived, answered after `release()`."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self._released = threading.Event()

    def wait_reached(self, sender: subprocess.Popen[Any]) -> bool:
        """Wait until the request arrives or `sender`, the process to send it, ends first;
        whether it arrived."""
        wait_until(
            lambda: self.reached.is_set() or sender.poll() is not None,
            what="the held data request",
        )
        return self.reached.is_set()

    def release(self) -> None:
        self._released.set()

    def wait_released(self) -> None:
        self._released.wait(CAP_SECONDS)


@contextmanager
def hold_request(emu: Emulator, number: int = 1) -> Iterator[HeldRequest]:
    """Hold the `number`th data request `emu` receives from now on (1-based) until released
    (at the latest when the block ends).

    The emulator serves nothing else meanwhile (the request is held in its event loop), so a
    test releases it as soon as it has acted on the process that sent it.
    """
    held = HeldRequest()
    faults = emu.faults
    decide = faults.decide
    numbers = itertools.count(1)

    def decide_or_hold() -> FaultDecision:
        if next(numbers) == number:
            held.reached.set()
            held.wait_released()
        return decide()

    faults.decide = decide_or_hold  # type: ignore[method-assign]
    try:
        yield held
    finally:
        held.release()
        del faults.decide


@contextmanager
def paused(process: subprocess.Popen[Any]) -> Iterator[None]:
    """Stop `process` for the block (it keeps its locks and connections), then let it go on."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)
