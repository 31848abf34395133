"""What a restore's outputs are made with, and refusing to mix outputs made otherwise.

An existing output counts as done only if it was made with the same recipe (model, weights,
settings): the output folder keeps a provenance record (``airtool.io.provenance``), and a run that
would skip outputs another recipe made is refused before any work, unless ``--overwrite``, so a
folder never silently holds two models' results. Videos keep their own recipe beside their kept
segments (``video_recipe``), and the run's report names the model and weights (``about``).
"""

from __future__ import annotations

import os
from typing import Any

from airtool.engine.inference.files import destination_folder, output_exists
from airtool.engine.inference.options import RestoreOptions
from airtool.errors import UsageError, WeightsError
from airtool.io.paths import Plan
from airtool.io.provenance import Provenance, Recipe
from airtool.models import get_spec
from airtool.models.weights_info import WeightsInfo, describe, sha256_of


def describe_weights(options: RestoreOptions) -> WeightsInfo | None:
    """The ``WeightsInfo`` of the weights ``options`` would load (None for a model without any);
    raises ``WeightsError`` as loading would, naming the file or how to get one."""
    from airtool.models.weights import resolve_weights

    path = resolve_weights(get_spec(options.model), options.weights)
    if path is None:
        return None
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    return describe(path, sha256_of(path))


def recipe_for(options: RestoreOptions, weights: WeightsInfo | None, untrained: str) -> Recipe:
    """What the provenance record keeps of each picture output: what changes its pixels."""
    return Recipe(model=options.model, weights_sha256=weights.sha256 if weights else None, variant=options.variant,
                  precision=options.precision, tile=options.tile, tile_overlap=options.tile_overlap,
                  quality=options.quality, weights=weights.file if weights else None, untrained=untrained)


def about(model: str, weights: WeightsInfo | None) -> dict[str, Any]:
    """The run's report header (``--json`` ``about``): the model, its weights and their tasks."""
    if weights is None:
        return {"model": model, "weights": None, "weights_sha256": None, "tasks": [], "untrained_tasks": []}
    return {"model": model, "weights": weights.file, "weights_sha256": weights.sha256, "tasks": list(weights.tasks),
            "untrained_tasks": list(weights.untrained_tasks)}


def provenance_for(work: Plan, output: str) -> Provenance | None:
    """The record of the output folder (for one named output file: of its folder); none for stdout."""
    folder = destination_folder(work, output)
    return None if folder is None else Provenance(folder)


def refuse_other_recipes(provenance: Provenance, work: Plan, recipe: Recipe) -> None:
    """A ``UsageError`` naming the first existing output made with another recipe, what differs,
    and how many more there are; nothing when every existing output has this run's recipe."""
    existing = [job.dst for job in work.jobs if job.dst is not None and output_exists(job)]
    others = {dst: made for dst, made in provenance.made_by(existing).items() if made.id != recipe.id}
    if not others:
        return
    dst, made = next(iter(others.items()))
    diff = made.differences(recipe)
    were = ", ".join(f"{what} {old}" for what, old, _ in diff)
    now = ", ".join(f"{what} {new}" for what, _, new in diff)
    more = f" and {len(others) - 1} more outputs were" if len(others) > 1 else " was"
    raise UsageError(
        f"{dst}{more} made with {were}; this run would use {now}. Pass --overwrite to redo them, or choose "
        "another output folder"
    )


def video_recipe(options: RestoreOptions) -> dict[str, Any]:
    """Everything that changes a restored video's frames: kept segments are reused only when equal."""
    from airtool._version import __version__

    return {"command": "restore", "airtool": __version__, "model": options.model, "weights": file_id(options.weights),
            "variant": options.variant, "device": options.device, "precision": options.precision,
            "tile": options.tile, "tile_overlap": options.tile_overlap}


def file_id(path: str | None) -> Any:
    """A weights file as its absolute path, size and modification time, so a file replaced under
    the same name counts as other weights; the name alone when it cannot be read (or None)."""
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return path
    return [os.path.abspath(path), stat.st_size, stat.st_mtime_ns]
