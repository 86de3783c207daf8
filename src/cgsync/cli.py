"""The `cgsync` command line: the app shell that wires each part's commands together.

Each part owns its commands in its own module; only this shell imports them all.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="cgsync",
    help="Keep CustomerGauge survey data exactly in step in your own data lake.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Each command module is light to import (its heavy work imports when the command runs),
    # so registering them all keeps `cgsync --help` quick.
    from cgsync._sync_cli import demo_command, status_command, sync_command
    from cgsync.emulator.cli import emulator_command
    from cgsync.report.cli import report_command

    app.command("emulator")(emulator_command)
    app.command("sync")(sync_command)
    app.command("status")(status_command)
    app.command("demo")(demo_command)
    app.command("report")(report_command)


_register()


def main() -> None:
    app()
