"""``airtool models``: the registered models, their sizes, and for each weights file the tasks
it was trained on and its measured scores (from the manifest beside it).

On a terminal: a table, the default model marked. Piped: one line per model and weights file,
columns separated by two spaces, nothing shortened, so that scripts can read it. No torch.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

COLUMNS = ("model", "default", "params", "weights", "trained_for", "not_trained_for", "measured")


def models(
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List the models airtool can run: exact parameter counts, which one is the default, and for
    each shipped weights file the tasks it was trained on and its measured scores (taken from
    weights/manifest.json). Piped, it prints plain columns with full names."""
    from airtool.api.models import models as list_models

    rows = list_models()
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
    elif sys.stdout.isatty():
        _print_table(rows)
    else:
        _print_plain(rows)


def plain_lines(rows: list[dict]) -> list[str]:
    """A header and one line per model and weights file; empty fields are '-', lists have no
    spaces, so each column is one word."""
    cells = [list(COLUMNS)]
    for row in rows:
        for info in row["weights_files"] or [None]:
            cells.append([
                row["name"], "yes" if row.get("default") else "no", str(row["params"] if row["params"] is not None else "?"),
                info["file"] if info else "-", ",".join(info["tasks"]) if info and info["tasks"] else "-",
                ",".join(info["untrained_tasks"]) if info and info["untrained_tasks"] else "-",
                _scores(info, plain=True) if info else "-",
            ])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(line, widths, strict=False)), line[-1]]) for line in cells]


def _print_plain(rows: list[dict]) -> None:
    for line in plain_lines(rows):
        typer.echo(line)


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "params", "weights", "trained for", "not trained for", "measured (PSNR dB / SSIM)")
    for row in rows:
        name = f"{row['name']} (default)" if row.get("default") else row["name"]
        params = f"{row['params']:,}" if row["params"] is not None else "?"
        none = "(not needed)" if row["params"] == 0 else "(none: see --weights)"
        if not row["weights_files"]:
            table.add_row(name, params, none, "", "", "")
        for info in row["weights_files"]:
            trained = ", ".join(info["tasks"]) or "not recorded"
            table.add_row(name, params, info["file"], trained, ", ".join(info["untrained_tasks"]), _scores(info))
    console = Console()
    console.print(table)
    console.print("Scores: airtool evaluate --suite 3task (promptir protocol); 'input' is the degraded input itself.")


def _scores(info: dict, plain: bool = False) -> str:
    """'SOTS 25.28/0.944 (input 19.31)' per line for each benchmark the manifest has; ``plain``:
    'SOTS=25.28/0.944(input:19.31)' joined by commas, one word."""
    parts = []
    for bench, table in info["scores"].items():
        inputs = info["input_scores"].get(bench, {})
        for name, (psnr, ssim) in table.items():
            if plain:
                base = f"(input:{inputs[name][0]:.2f})" if name in inputs else ""
                parts.append(f"{name}={psnr:.2f}/{ssim:.3f}{base}")
            else:
                base = f" (input {inputs[name][0]:.2f})" if name in inputs else ""
                parts.append(f"{name} {psnr:.2f}/{ssim:.3f}{base}")
    if not parts:
        return "-" if plain else "not measured"
    return ",".join(parts) if plain else "\n".join(parts)


def register(app: typer.Typer) -> None:
    app.command()(models)
