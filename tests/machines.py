"""Machines for tests that run cgsync as its users do: `cgsync ...` in a directory, with the
defaults (no --pipelines-dir), on a machine whose dlt directory is its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cgsync.emulator import Emulator

CREDENTIAL_VARIABLES = tuple(
    f"CUSTOMERGAUGE_{name}"
    for name in ("CLIENT_ID", "CLIENT_SECRET", "REGION", "AUTH_URL", "API_URL")
)


def connect(emu: Emulator, **overrides: str) -> dict[str, str]:
    """The environment a user sets to sync `emu`."""
    return {
        "CUSTOMERGAUGE_CLIENT_ID": emu.client_id,
        "CUSTOMERGAUGE_CLIENT_SECRET": emu.client_secret,
        "CUSTOMERGAUGE_AUTH_URL": emu.token_url,
        "CUSTOMERGAUGE_API_URL": emu.base_url,
        **overrides,
    }


@dataclass
class Machine:
    """A machine: dlt's data directory (`~/.dlt` of its user) is `home`, nothing else is shared
    with other machines but what a test hands over (a lake's file, a database)."""

    home: Path

    def cgsync(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `cgsync <args>` in `cwd` to its end."""
        return subprocess.run(
            self.command(*args),
            check=False,
            cwd=cwd,
            env=self.environment(env),
            capture_output=True,
            text=True,
        )

    def start(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """Start `cgsync <args>` in `cwd` and return at once."""
        return subprocess.Popen(
            self.command(*args),
            cwd=cwd,
            env=self.environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "cgsync", *args]

    def environment(self, env: dict[str, str] | None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
        base = {k: v for k, v in base.items() if not k.startswith("DESTINATION__")}
        return {**base, "DLT_DATA_DIR": str(self.home), **(env or {})}

    def local_state(self) -> list[Path]:
        """Every file cgsync or dlt keeps on this machine."""
        return sorted(p for p in self.home.rglob("*") if p.is_file()) if self.home.exists() else []

    def wipe(self) -> None:
        """Lose all local state, as a fresh container or orchestrator worker would."""
        shutil.rmtree(self.home, ignore_errors=True)


def directory(path: Path) -> Path:
    """A fresh, empty working directory."""
    path.mkdir(parents=True)
    return path
