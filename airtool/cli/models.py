"""``airtool models``: the registered models, their sizes, and for each weights file the tasks
it was trained on and its measured scores (from the manifest beside it)."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def models(
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List the models airtool can run: exact parameter counts, and for each shipped weights
    file the tasks it was trained on and its measured scores (taken from weights/manifest.json)."""
    from airtool.api import models as list_models

    rows = list_models()
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    _print_table(rows)


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "params", "weights", "trained for", "not trained for", "measured (PSNR dB / SSIM)")
    for row in rows:
        params = f"{row['params']:,}" if row["params"] is not None else "?"
        none = "(not needed)" if row["params"] == 0 else "(none: see --weights)"
        if not row["weights_files"]:
            table.add_row(row["name"], params, none, "", "", "")
        for info in row["weights_files"]:
            trained = ", ".join(info["tasks"]) or "not recorded"
            table.add_row(row["name"], params, info["file"], trained, ", ".join(info["untrained_tasks"]), _scores(info))
    Console().print(table)
    Console().print("Scores: airtool evaluate --suite 3task (promptir protocol); 'input' is the degraded input itself.")


def _scores(info: dict) -> str:
    """'SOTS 25.28/0.944 (input 19.31), ...' for each benchmark the manifest has."""
    parts = []
    for bench, table in info["scores"].items():
        inputs = info["input_scores"].get(bench, {})
        for name, (psnr, ssim) in table.items():
            base = f" (input {inputs[name][0]:.2f})" if name in inputs else ""
            parts.append(f"{name} {psnr:.2f}/{ssim:.3f}{base}")
    return "\n".join(parts) or "not measured"


def register(app: typer.Typer) -> None:
    app.command()(models)
