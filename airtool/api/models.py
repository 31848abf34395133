"""``api.models``: the registered models, their facts, and the weights shipped for each."""

from __future__ import annotations

from typing import Any


def models() -> list[dict[str, Any]]:
    """One dict per registered model (``airtool models --json`` prints exactly this): parameter
    count, paper and code, size multiple, precisions per device, variants, and for each shipped
    weights file the tasks it was trained on and its measured scores (from the manifest)."""
    from airtool.models import list_specs
    from airtool.models.weights import weights_dir
    from airtool.models.weights_info import describe

    folder = weights_dir()
    rows = []
    for spec in list_specs():
        files = [name for name in spec.weights.values() if (folder / name).is_file()]
        rows.append({
            "name": spec.name, "title": spec.title, "params": spec.params, "paper": spec.paper, "code": spec.code,
            "size_multiple": spec.size_multiple, "precision_cpu": list(spec.precision.allowed("cpu")),
            "precision_cuda": list(spec.precision.allowed("cuda")), "variants": sorted(spec.variants), "weights": files,
            "needs_clip": spec.needs_clip,
            "weights_files": [describe(folder / name).as_dict() for name in files],
        })
    return rows
