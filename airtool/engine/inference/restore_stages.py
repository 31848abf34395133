"""What ``restore`` does with each job of its batch: the ``Stages`` that ``run_batch`` runs.

A picture is decoded at its own bit depth, checked encodable in its output format before the
inference (a refusal costs no model time), judged for degradations its weights were not trained
for (kept unchanged or restored, with a note: ``untrained``), restored with its finished tiles
kept beside the output (``airtool.io.tile_resume``, so an interrupted run resumes), written
atomically with its provenance recorded just before the rename, and then its kept tiles go. The
memory a large picture's decoding or encoding freed goes back to the system
(``engine/hardware/allocator.py``). A video is one job (``video_job``).
"""

from __future__ import annotations

from typing import Any

from airtool.engine.hardware.allocator import give_back_after
from airtool.engine.inference.batch import Saved, Stages
from airtool.engine.inference.files import BeforeRename, image_saver, loaded_notes, output_exists, read_input
from airtool.engine.inference.options import RestoreOptions
from airtool.engine.inference.restore_recipe import video_recipe
from airtool.engine.inference.untrained import UntrainedCheck
from airtool.engine.inference.video_job import probe, run_video_job, with_videos
from airtool.io.image import Picture, check_encodable
from airtool.io.paths import VIDEO, Job, Plan, format_for
from airtool.io.provenance import Provenance, Recipe
from airtool.report import Reporter

# compute's result: the output (a Picture, or a finished video), the file's facts, its notes.
Restored = tuple[Any, dict[str, Any], list[str]]


def tile_store(job: Job, recipe: Recipe | None = None) -> Any:
    """Where a tiled restore of ``job`` keeps its finished tiles, so a rerun resumes (None: stdout).
    Tiles kept under other weights or variant are not reused (``recipe``)."""
    if job.dst is None:
        return None
    from airtool.io.tile_resume import TileStore, folder_for

    about = {} if recipe is None else {"weights_sha256": recipe.weights_sha256, "variant": recipe.variant}
    return TileStore(folder_for(job.dst), about)


def clean_kept_tiles(work: Plan) -> None:
    """Remove the kept tiles (``io.tile_resume``) of outputs that were written after all."""
    from airtool.io.tile_resume import folder_for

    for job in work.jobs:
        if job.kind != VIDEO and output_exists(job) and folder_for(job.dst).is_dir():
            tile_store(job).remove()


class RestoreStages:
    """One restore run's work per job; ``stages()`` hands it to ``run_batch``. ``restorer`` is None
    when the run has nothing to write (no job reaches ``compute`` then)."""

    def __init__(self, restorer: Any, options: RestoreOptions, reporter: Reporter, provenance: Provenance | None,
                 recipe: Recipe, untrained: UntrainedCheck) -> None:
        self.restorer, self.options, self.reporter = restorer, options, reporter
        self.provenance, self.recipe, self.untrained = provenance, recipe, untrained
        self._save = with_videos(image_saver(options.quality, self._record))

    def stages(self) -> Stages:
        return Stages(load=self.load, compute=self.compute, save=self.save, is_done=output_exists,
                      notes=loaded_notes, describe=lambda item: item[1], compute_name="infer")

    def load(self, job: Job) -> Any:
        """A video's ``VideoInfo``, or the decoded picture (its memory handed back after)."""
        if job.kind == VIDEO:
            return probe(job, self.options.max_pixels)
        picture = read_input(job, self.options.max_pixels, native=True)
        give_back_after(picture.pixels.nbytes)  # what decoding a large picture freed
        return picture

    def compute(self, job: Job, item: Any) -> Restored:
        if job.kind == VIDEO:
            outcome = run_video_job(job, item, self.options, self.reporter, lambda index, pixels: self.restorer(pixels),
                                    video_recipe(self.options))
            return outcome, {}, []
        return self._restore_picture(job, item)

    def _restore_picture(self, job: Job, picture: Picture) -> Restored:
        check_encodable(picture, format_for(job, picture.format), str(job.dst or "-"))  # before the inference
        verdict = self.untrained.judge(picture.pixels)
        made_by = {"model": self.recipe.model, "weights_sha256": self.recipe.weights_sha256}
        if verdict.keep:  # written as it came: these weights would make it worse
            return picture, {**made_by, **verdict.facts()}, verdict.notes()
        pixels, info = self.restorer.restore(picture.pixels, resume=tile_store(job, self.recipe),
                                             on_tile=lambda done, total: self.reporter.tiles(job.rel, done, total))
        notes = info.pop("notes", []) + verdict.notes()  # the tiles' notes go with the file's (stderr, --json)
        return picture.with_pixels(pixels), {**made_by, **info, **verdict.facts()}, notes

    def save(self, job: Job, item: Restored) -> Any:
        """Write the output, then drop its kept tiles and hand back what encoding freed."""
        output, _, notes = item
        saved = self._save(job, output)
        store = tile_store(job) if job.kind != VIDEO else None
        if store is not None:
            store.remove()  # the output is written: its kept tiles are done with
        pixels = getattr(output, "pixels", None)  # a picture; a finished video has none
        give_back_after(0 if pixels is None else pixels.nbytes)
        return Saved(saved, notes, {}) if notes and isinstance(saved, str) else saved

    def _record(self, job: Job) -> BeforeRename | None:
        """Record the output's recipe in the folder's provenance just before its rename."""
        provenance, dst = self.provenance, job.dst
        if provenance is None or dst is None:
            return None
        return lambda tmp: provenance.record(tmp, dst, self.recipe)
