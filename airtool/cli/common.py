"""Small helpers shared by the command modules (no heavy imports)."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(err: Exception) -> NoReturn:
    """Print an airtool error as one line and exit with its code."""
    typer.echo(f"airtool: error: {err}", err=True)
    raise typer.Exit(getattr(err, "exit_code", 1))


def parse_tile(value: str) -> int | str:
    if value == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"expected auto, 0 or a number of pixels, not {value!r}") from None
