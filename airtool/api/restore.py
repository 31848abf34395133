"""``api.restore`` and what every batch command shares (``api.degrade`` too): files, folders, videos, stdin.

Nothing here prints or reads argv: progress goes to the ``Reporter`` passed in (or, with
``progress=True``, a tqdm bar), and the result is a ``RunReport``. torch is imported only inside
the functions that need it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airtool.errors import UsageError
from airtool.io.image import DEFAULT_MAX_PIXELS, Picture, check_encodable, encode_image, read_image
from airtool.io.paths import VIDEO, Job, Plan, format_for, plan
from airtool.io.provenance import Provenance, Recipe
from airtool.models import DEFAULT_MODEL
from airtool.models.spec import check_precision_name, check_threads
from airtool.models.weights_info import sha256_of
from airtool.report import NullReporter, Reporter, RunReport


@dataclass(frozen=True)
class BatchOptions:
    """What every batch command shares: where outputs go and how existing ones are treated."""

    overwrite: bool = False
    suffix: str = ""
    format: str | None = None
    quality: int = 95
    recursive: bool = False
    dry_run: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    # Videos (see airtool.engine.inference.video): encoder, constant quality, pixel format, segment length.
    codec: str | None = None
    crf: int | None = None
    pix_fmt: str | None = None
    segment: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.quality <= 100:
            raise UsageError("--quality must be between 1 and 100")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise UsageError("--crf must be between 0 and 63")
        if not self.segment > 0:
            raise UsageError("--segment must be a positive number of seconds")


@dataclass(frozen=True)
class RestoreOptions(BatchOptions):
    model: str = DEFAULT_MODEL
    weights: str | None = None
    variant: str | None = None
    clip: str | None = None  # se-symunet's CLIP encoder folder (default: $AIRTOOL_CLIP)
    device: str = "auto"
    precision: str = "auto"
    tile: int | str = "auto"
    tile_overlap: int = 32
    batch_size: int = 1
    threads: int | None = None
    compile: bool = False
    # Pictures that look like a task the weights were not trained for (low light, blur):
    # "keep" writes them unchanged, "restore" restores them anyway (engine/inference/untrained.py).
    untrained: str = "keep"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.tile, str) and self.tile != "auto":
            raise UsageError(f"--tile must be auto, 0 or a size in pixels, not {self.tile!r}")
        if isinstance(self.tile, int) and self.tile < 0:
            raise UsageError("--tile must be >= 0")
        if self.tile_overlap < 0 or (isinstance(self.tile, int) and self.tile and self.tile_overlap >= self.tile):
            raise UsageError("--tile-overlap must be >= 0 and smaller than --tile")
        if self.batch_size < 1:
            raise UsageError("--batch-size must be >= 1")
        check_precision_name(self.precision)
        check_threads(self.threads)
        from airtool.engine.inference.untrained import check_choice

        check_choice(self.untrained)


def shard(jobs: list[Job]) -> list[Job]:
    """Under torchrun, each rank takes every WORLD_SIZE-th file, starting at its RANK."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return jobs[rank::world] if world > 1 else jobs


def restore(inputs: list[str], output: str, options: RestoreOptions = RestoreOptions(), reporter: Reporter | None = None,
            progress: bool = False) -> RunReport:
    """Restore images from files, folders or stdin (``-``) into ``output``; ``progress``: a tqdm
    bar over the files when no ``reporter`` is given.

    An existing output counts as done only if the folder's provenance record says the same
    recipe (model, weights, options) made it; one made by another is refused before any work
    unless ``overwrite`` (``airtool.io.provenance``). A picture that looks like low light or blur
    where the weights were not trained for it is written unchanged, or with ``untrained="restore"``
    restored anyway, and gets a note either way (``engine/inference/untrained.py``).
    """
    from airtool.engine.inference.batch import run_batch

    reporter = reporter or _default_reporter(progress, "restoring")
    work = plan(inputs, output, recursive=options.recursive, suffix=options.suffix, fmt=options.format)
    work.jobs = shard(work.jobs)
    _clean_temps(work, output)
    if not options.overwrite:
        _clean_kept_tiles(work)
    has_work = _has_work(work, options.overwrite)
    if has_work:
        _check_writable(work, output)  # before the model loads: a read-only destination is one line
        _check_codec(work, options)
    weights = describe_weights(options)
    untrained = _untrained_check(options, weights)
    recipe = _recipe(options, weights, untrained.choice)
    provenance = _provenance(work, output)
    if provenance is not None and not options.overwrite:
        _refuse_other_recipes(provenance, work, recipe)
    restorer = None
    if has_work:
        # A dry run checks what the real run needs (destination, model, weights, device,
        # precision), so it fails exactly when the real run would; it only skips the inference.
        restorer = build_restorer(options)
    stages = _restore_stages(restorer, options, reporter, provenance, recipe, untrained)
    about = _about(options.model, weights)
    return run_batch(work, stages, reporter, overwrite=options.overwrite, dry_run=options.dry_run, about=about)


def _default_reporter(progress: bool, verb: str) -> Reporter:
    if not progress:
        return NullReporter()
    from airtool.api.progress import EventReporter, TqdmBar

    return EventReporter(TqdmBar(verb))


def describe_weights(options: RestoreOptions) -> Any:
    """The ``WeightsInfo`` of the weights ``options`` would load (None for a model without any);
    raises ``WeightsError`` as loading would, naming the file or how to get one."""
    from airtool.models import get_spec
    from airtool.models.weights import resolve_weights
    from airtool.models.weights_info import describe

    path = resolve_weights(get_spec(options.model), options.weights)
    if path is None:
        return None
    if not path.is_file():
        from airtool.errors import WeightsError

        raise WeightsError(f"{path}: weights file not found")
    return describe(path, sha256_of(path))


def _about(model: str, weights: Any) -> dict:
    if weights is None:
        return {"model": model, "weights": None, "weights_sha256": None, "tasks": [], "untrained_tasks": []}
    return {"model": model, "weights": weights.file, "weights_sha256": weights.sha256, "tasks": list(weights.tasks),
            "untrained_tasks": list(weights.untrained_tasks)}


def _recipe(options: RestoreOptions, weights: Any, untrained: str) -> Recipe:
    return Recipe(model=options.model, weights_sha256=weights.sha256 if weights else None, variant=options.variant,
                  precision=options.precision, tile=options.tile, tile_overlap=options.tile_overlap,
                  quality=options.quality, weights=weights.file if weights else None, untrained=untrained)


def _untrained_check(options: RestoreOptions, weights: Any) -> Any:
    """What to look for in each picture: the weights' untrained tasks that show a sign. With none
    (all trained, or not recorded) the choice cannot change a pixel and counts as ``restore``."""
    from airtool.degradation_signs import SIGNS
    from airtool.engine.inference.untrained import UntrainedCheck

    tasks = tuple(t for t in (weights.untrained_tasks if weights else ()) if t in SIGNS)
    return UntrainedCheck(tasks, options.untrained if tasks else "restore")


def _provenance(work: Plan, output: str) -> Provenance | None:
    """The record of the output folder (for one named output file: of its folder); none for stdout."""
    if output == "-":
        return None
    single_file = len(work.jobs) == 1 and work.jobs[0].dst == Path(output)
    return Provenance(Path(output).parent if single_file else Path(output))


def _refuse_other_recipes(provenance: Provenance, work: Plan, recipe: Recipe) -> None:
    existing = [job.dst for job in work.jobs if job.dst is not None and _output_exists(job)]
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


def build_restorer(options: RestoreOptions) -> Any:
    """Load the model and its weights and wrap them for whole-picture inference."""
    import torch

    from airtool.engine.inference.infer import TileOptions
    from airtool.engine.inference.load import load_restorer

    if options.threads:
        torch.set_num_threads(options.threads)
    tiles = TileOptions(options.tile, options.tile_overlap, options.batch_size)
    return load_restorer(options.model, options.weights, variant=options.variant, device=options.device,
                         precision=options.precision, clip=options.clip, tiles=tiles, compile=options.compile)


def _has_work(work: Plan, overwrite: bool) -> bool:
    return any(overwrite or not _output_exists(job) for job in work.jobs)


def _check_writable(work: Plan, output: str) -> None:
    from airtool.io.atomic import check_writable

    if output == "-":
        return
    single_file = len(work.jobs) == 1 and work.jobs[0].dst == Path(output)
    check_writable(Path(output).parent if single_file else Path(output))


def _clean_temps(work: Plan, output: str) -> None:
    """Remove what killed runs left: temporary files in the output folder, or of the output file,
    and the segment folders of videos that were finished."""
    from airtool.io.atomic import remove_stale_temps

    if output != "-" and Path(output).is_dir():
        remove_stale_temps(Path(output))
    elif len(work.jobs) == 1 and work.jobs[0].dst is not None:
        remove_stale_temps(work.jobs[0].dst.parent, only_for=work.jobs[0].dst)
    if any(job.kind == VIDEO for job in work.jobs):
        from airtool.engine.inference.video import clean_finished

        for job in work.jobs:
            if job.kind == VIDEO and job.dst is not None:
                clean_finished(job.dst)


def _clean_kept_tiles(work: Plan) -> None:
    """Remove the kept tiles (``io.tile_resume``) of outputs that were written after all."""
    from airtool.io.tile_resume import folder_for

    for job in work.jobs:
        if job.kind != VIDEO and _output_exists(job) and folder_for(job.dst).is_dir():
            _tile_store(job).remove()


def _tile_store(job: Job, recipe: Recipe | None = None) -> Any:
    """Where a tiled restore of ``job`` keeps its finished tiles, so a rerun resumes (None: stdout)."""
    if job.dst is None:
        return None
    from airtool.io.tile_resume import TileStore, folder_for

    about = {} if recipe is None else {"weights_sha256": recipe.weights_sha256, "variant": recipe.variant}
    return TileStore(folder_for(job.dst), about)


def _check_codec(work: Plan, options: BatchOptions) -> None:
    """A ``--codec`` the bundled ffmpeg cannot write is a usage error before any work."""
    if not options.codec or not any(job.kind == VIDEO for job in work.jobs):
        return
    from airtool.errors import InputError
    from airtool.io.encode import check_codec
    from airtool.io.video import ffmpeg_exe

    try:
        ffmpeg = ffmpeg_exe("--codec")
    except InputError:
        return  # no video support: each video says what to install
    check_codec(ffmpeg, options.codec)


def _restore_stages(restorer: Any, options: RestoreOptions, reporter: Reporter, provenance: Provenance | None,
                    recipe: Recipe, untrained: Any):
    from airtool.engine.hardware.allocator import give_back_after
    from airtool.engine.inference.batch import Saved, Stages

    def load(job: Job) -> Any:
        if job.kind == VIDEO:
            return _probe(job, options)
        data = sys.stdin.buffer.read() if job.src is None else job.src
        # native: 8/16-bit pixels stay uint8/uint16; the Restorer converts them window by window
        picture = read_image(data, str(job.src) if job.src else "<stdin>", options.max_pixels, native=True)
        give_back_after(picture.pixels.nbytes)  # what decoding a large picture freed (engine/hardware/allocator.py)
        return picture

    def compute(job: Job, item: Any) -> tuple[Any, dict, list[str]]:
        if job.kind == VIDEO:
            return _video(job, item, options, reporter, lambda index, pixels: restorer(pixels), _restore_recipe(options)), {}, []
        check_encodable(item, format_for(job, item.format), str(job.dst or "-"))  # before the inference
        verdict = untrained.judge(item.pixels)
        if verdict.keep:  # written as it came: these weights would make it worse
            return item, {"model": recipe.model, "weights_sha256": recipe.weights_sha256, **verdict.facts()}, verdict.notes()
        pixels, info = restorer.restore(item.pixels, on_tile=lambda done, total: reporter.tiles(job.rel, done, total),
                                        resume=_tile_store(job, recipe))
        notes = info.pop("notes", [])  # the tile's notes go with the file's (stderr, and --json "notes")
        notes += verdict.notes()
        facts = {"model": recipe.model, "weights_sha256": recipe.weights_sha256, **info, **verdict.facts()}
        return item.with_pixels(pixels), facts, notes

    def record(job: Job) -> Callable[[Path], None] | None:
        if provenance is None or job.dst is None:
            return None
        return lambda tmp: provenance.record(tmp, job.dst, recipe)

    def save_and_give_back(job: Job, item: Any) -> Any:
        saved = save(job, item[0])
        store = _tile_store(job) if job.kind != VIDEO else None
        if store is not None:
            store.remove()  # the output is written: its kept tiles are done with
        pixels = getattr(item[0], "pixels", None)  # a picture; a finished video has none
        give_back_after(0 if pixels is None else pixels.nbytes)  # what encoding a large picture freed
        return Saved(saved, item[2], {}) if item[2] and isinstance(saved, str) else saved

    save = _with_videos(_saver(options.quality, record))
    return Stages(load=load, compute=compute, save=save_and_give_back, is_done=_output_exists,
                  notes=_notes, describe=lambda item: item[1], compute_name="infer")


def _notes(item: Any) -> list[str]:
    return getattr(item, "notes", [])


def _probe(job: Job, options: BatchOptions) -> Any:
    from airtool.io.video import probe

    return probe(job.src, str(job.src), options.max_pixels)


def _video(job: Job, info: Any, options: BatchOptions, reporter: Reporter, transform: Any, recipe: dict,
           before_publish: Any = None) -> Any:
    """Run one video through ``transform`` (frame index, pixels -> pixels); see airtool.engine.inference.video."""
    from airtool.engine.inference.video import VideoTask, run_video

    job.dst.parent.mkdir(parents=True, exist_ok=True)
    task = VideoTask(info=info, dst=job.dst, label=str(job.src), transform=transform, recipe=recipe,
                     codec=options.codec, crf=options.crf, pix_fmt=options.pix_fmt, segment_seconds=options.segment,
                     fresh=options.overwrite, before_publish=before_publish)
    name = job.src.name
    return run_video(task, lambda done, total: reporter.frames(name, done, total))


def _with_videos(save_image: Any) -> Any:
    """``save`` for a batch that may hold videos: a finished video is already written (atomically,
    by ``run_video``); it is reported with its frame count, rate and duration."""
    from airtool.engine.inference.batch import Saved
    from airtool.engine.inference.video import VideoOutcome

    def save(job: Job, item: Any) -> Any:
        if isinstance(item, VideoOutcome):
            return Saved(item.path, item.notes, item.to_extra())
        return save_image(job, item)

    return save


def _restore_recipe(options: RestoreOptions) -> dict:
    """Everything that changes a restored video's frames: kept segments are reused only when equal."""
    from airtool._version import __version__

    return {"command": "restore", "airtool": __version__, "model": options.model, "weights": _file_id(options.weights),
            "variant": options.variant, "device": options.device, "precision": options.precision,
            "tile": options.tile, "tile_overlap": options.tile_overlap}


def _file_id(path: str | None) -> Any:
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return path
    return [os.path.abspath(path), stat.st_size, stat.st_mtime_ns]


def _output_exists(job: Job) -> bool:
    """Outputs are written atomically, so an existing file is complete (a folder is not an output)."""
    return job.dst is not None and job.dst.is_file()


def _saver(quality: int, before_rename: Callable[[Job], Callable[[Path], None] | None] = lambda job: None):
    from airtool.io.atomic import write_stream
    from airtool.io.image import write_image

    def save(job: Job, pic: Picture) -> str:
        fmt = format_for(job, pic.format)
        if job.dst is None:  # encoded whole first, so a failure never leaves half a file on stdout
            sys.stdout.buffer.write(encode_image(pic, fmt, quality, label="-"))
            sys.stdout.buffer.flush()
            return "-"
        job.dst.parent.mkdir(parents=True, exist_ok=True)
        write_stream(job.dst, lambda fh: write_image(pic, fmt, fh, quality, label=str(job.dst)), before_rename(job))
        return str(job.dst)

    return save


def _version() -> str:
    from airtool._version import __version__

    return __version__
