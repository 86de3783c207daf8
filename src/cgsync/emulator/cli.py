"""`cgsync emulator` (placeholder: being built)."""

import typer


def emulator_command() -> None:
    """Serve a local CustomerGauge API emulator."""
    raise typer.Exit(1)
