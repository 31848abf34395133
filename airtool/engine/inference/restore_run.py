"""One ``restore`` run, from its inputs and options to a ``RunReport``: ``run_restore``.

The order matters. What killed runs left is cleaned first; then everything that can fail for the
whole run fails before any work and before the model loads, as one line: an unwritable
destination, an unknown ``--codec``, missing weights, existing outputs another recipe made
(``restore_recipe``). A dry run checks all the real run needs, model and device included, so it
fails exactly when the real run would; it only skips the inference. A run with nothing left to
write loads no model at all. The per-job work is ``restore_stages``; the pipeline is ``run_batch``.
"""

from __future__ import annotations

from typing import Any

from airtool.engine.inference.batch import run_batch, shard
from airtool.engine.inference.files import check_writable, clean_temps, has_work
from airtool.engine.inference.options import RestoreOptions
from airtool.engine.inference.restore_recipe import (
    about,
    describe_weights,
    provenance_for,
    recipe_for,
    refuse_other_recipes,
)
from airtool.engine.inference.restore_stages import RestoreStages, clean_kept_tiles
from airtool.engine.inference.untrained import untrained_check
from airtool.engine.inference.video_job import check_codec
from airtool.io.paths import plan
from airtool.report import Reporter, RunReport


def run_restore(inputs: list[str], output: str, options: RestoreOptions, reporter: Reporter) -> RunReport:
    """Restore ``inputs`` (files, folders, videos, ``-`` for stdin) into ``output``; see the module."""
    work = plan(inputs, output, recursive=options.recursive, suffix=options.suffix, fmt=options.format)
    work.jobs = shard(work.jobs)
    clean_temps(work, output)
    if not options.overwrite:
        clean_kept_tiles(work)
    writes = has_work(work, options.overwrite)
    if writes:
        check_writable(work, output)  # before the model loads: a read-only destination is one line
        check_codec(work, options)
    weights = describe_weights(options)
    untrained = untrained_check(weights, options.untrained)
    recipe = recipe_for(options, weights, untrained.choice)
    provenance = provenance_for(work, output)
    if provenance is not None and not options.overwrite:
        refuse_other_recipes(provenance, work, recipe)
    restorer = build_restorer(options) if writes else None
    stages = RestoreStages(restorer, options, reporter, provenance, recipe, untrained).stages()
    return run_batch(work, stages, reporter, overwrite=options.overwrite, dry_run=options.dry_run,
                     about=about(options.model, weights))


def build_restorer(options: RestoreOptions) -> Any:
    """Load the model and its weights and wrap them for whole-picture inference (a ``Restorer``),
    with the run's threads, tiles and precision."""
    import torch

    from airtool.engine.inference.infer import TileOptions
    from airtool.engine.inference.load import load_restorer

    if options.threads:
        torch.set_num_threads(options.threads)
    tiles = TileOptions(options.tile, options.tile_overlap, options.batch_size)
    return load_restorer(options.model, options.weights, variant=options.variant, device=options.device,
                         precision=options.precision, clip=options.clip, tiles=tiles, compile=options.compile)
