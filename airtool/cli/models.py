"""``airtool models``: the registered models, their sizes and available weights."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def models(
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List the models airtool can run, with exact parameter counts and shipped weights."""
    from airtool.models import list_specs
    from airtool.models.weights import weights_dir

    folder = weights_dir()
    rows = []
    for spec in list_specs():
        files = [name for name in spec.weights.values() if (folder / name).is_file()]
        rows.append({
            "name": spec.name, "title": spec.title, "params": spec.params, "paper": spec.paper, "code": spec.code,
            "size_multiple": spec.size_multiple, "precision_cpu": list(spec.precision.allowed("cpu")),
            "precision_cuda": list(spec.precision.allowed("cuda")), "variants": sorted(spec.variants), "weights": files,
            "needs_clip": spec.needs_clip,
        })
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "params", "weights", "paper")
    for row in rows:
        params = f"{row['params']:,}" if row["params"] is not None else "?"
        none = "(not needed)" if row["params"] == 0 else "(none: see --weights)"
        table.add_row(row["name"], params, ", ".join(row["weights"]) or none, row["paper"])
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command()(models)
