"""The `cgsync` app shell: every command's `--help` starts quick, importing nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Each of these takes tenths of a second or tens of MB to import: the commands import them
# when they run, never for `--help`.
HEAVY_MODULES = frozenset(
    {
        "dlt",
        "duckdb",
        "pyarrow",
        "numpy",
        "pandas",
        "httpx",
        "orjson",
        "fastapi",
        "uvicorn",
        "deltalake",
        "pyiceberg",
        "plotly",
        "pydantic",  # typer 0.29 builds each command's options with it: pyproject keeps 0.28
    }
)

# Runs the app as `cgsync <argv>`, then names on stderr the top-level modules it imported.
_PROBE = """
import json, sys
from cgsync.cli import app
try:
    app(sys.argv[1:], prog_name="cgsync")
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "command",
    [[], ["emulator"], ["report"], ["sync"], ["status"], ["demo"]],
    ids=lambda command: " ".join(["cgsync", *command]),
)
def test_help_prints_the_usage_and_imports_nothing_heavy(command: list[str]) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, *command, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert " ".join(["Usage: cgsync", *command]) in probe.stdout
    imported = set(json.loads(probe.stderr.splitlines()[-1]))
    assert sorted(HEAVY_MODULES & imported) == []
