"""``api.models``: the registered models, their facts, and the weights shipped for each.

No torch: the facts come from ``models/facts_table.py`` and the weights' tasks and scores from
the manifest, so ``airtool models`` answers at once.
"""

from __future__ import annotations

from typing import Any


def models() -> list[dict[str, Any]]:
    """One dict per registered model (``airtool models --json`` prints exactly this): parameter
    count, paper and code, size multiple, precisions per device, variants, whether it is the
    default, and for each shipped weights file the tasks it was trained on and its measured
    scores (from the manifest)."""
    from airtool.models import DEFAULT_MODEL, model_names
    from airtool.models.facts import model_facts
    from airtool.models.weights_info import describe, weights_dir

    folder = weights_dir()
    rows = []
    for name in model_names():
        facts = dict(model_facts(name))
        files = [file for file in facts.pop("weights_names") if (folder / file).is_file()]
        rows.append({**facts, "default": name == DEFAULT_MODEL, "weights": files,
                     "weights_files": [describe(folder / file).as_dict() for file in files]})
    return rows
