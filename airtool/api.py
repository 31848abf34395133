"""The Python API behind the CLI. Tests call these functions directly.

Nothing here prints or reads argv: progress goes to the ``Reporter`` passed in, and the
result is a ``RunReport``. torch is imported only inside the functions that need it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from airtool.errors import UsageError
from airtool.io.image import DEFAULT_MAX_PIXELS, Picture, encode_image, read_image
from airtool.io.paths import Job, Plan, plan
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

    def __post_init__(self) -> None:
        if not 1 <= self.quality <= 100:
            raise UsageError("--quality must be between 1 and 100")


@dataclass(frozen=True)
class RestoreOptions(BatchOptions):
    model: str = "symunet"
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


def shard(jobs: list[Job]) -> list[Job]:
    """Under torchrun, each rank takes every WORLD_SIZE-th file, starting at its RANK."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return jobs[rank::world] if world > 1 else jobs


def restore(inputs: list[str], output: str, options: RestoreOptions = RestoreOptions(), reporter: Reporter | None = None) -> RunReport:
    """Restore images from files, folders or stdin (``-``) into ``output``."""
    from airtool.engine.batch import run_batch

    reporter = reporter or NullReporter()
    work = plan(inputs, output, recursive=options.recursive, suffix=options.suffix, fmt=options.format)
    work.jobs = shard(work.jobs)
    _clean_temps(work, output)
    if options.dry_run or not _has_work(work, options.overwrite):
        stages = _restore_stages(None, options)
    else:
        _check_writable(work, output)  # before the model loads: a read-only destination is one line
        stages = _restore_stages(build_restorer(options), options)
    return run_batch(work, stages, reporter, overwrite=options.overwrite, dry_run=options.dry_run)


def build_restorer(options: RestoreOptions) -> Any:
    """Load the model and its weights and wrap them for whole-picture inference."""
    import torch

    from airtool.engine.device import resolve
    from airtool.engine.infer import Restorer, TileOptions
    from airtool.models.weights import load_model

    if options.threads:
        torch.set_num_threads(options.threads)
    model, spec = load_model(options.model, options.weights, options.variant, options.clip)
    runtime = resolve(spec.precision, options.device, options.precision)
    tiles = TileOptions(options.tile, options.tile_overlap, options.batch_size)
    return Restorer(model, spec, runtime, tiles, compile=options.compile)


def _has_work(work: Plan, overwrite: bool) -> bool:
    return any(overwrite or not _output_exists(job) for job in work.jobs)


def _check_writable(work: Plan, output: str) -> None:
    from airtool.io.atomic import check_writable

    if output == "-":
        return
    single_file = len(work.jobs) == 1 and work.jobs[0].dst == Path(output)
    check_writable(Path(output).parent if single_file else Path(output))


def _clean_temps(work: Plan, output: str) -> None:
    """Remove what killed runs left: temporary files in the output folder, or of the output file."""
    from airtool.io.atomic import remove_stale_temps

    if output != "-" and Path(output).is_dir():
        remove_stale_temps(Path(output))
    elif len(work.jobs) == 1 and work.jobs[0].dst is not None:
        remove_stale_temps(work.jobs[0].dst.parent, only_for=work.jobs[0].dst)


def _restore_stages(restorer: Any, options: RestoreOptions):
    from airtool.engine.batch import Stages

    def load(job: Job) -> Picture:
        data = sys.stdin.buffer.read() if job.src is None else job.src
        # native: 8/16-bit pixels stay uint8/uint16; the Restorer converts them window by window
        return read_image(data, str(job.src) if job.src else "<stdin>", options.max_pixels, native=True)

    def compute(job: Job, pic: Picture) -> Picture:
        return pic.with_pixels(restorer(pic.pixels))

    return Stages(load=load, compute=compute, save=_saver(options.quality), is_done=_output_exists, notes=lambda p: p.notes)


def _output_exists(job: Job) -> bool:
    """Outputs are written atomically, so an existing file is complete (a folder is not an output)."""
    return job.dst is not None and job.dst.is_file()


def _saver(quality: int):
    from airtool.io.atomic import write_stream
    from airtool.io.image import write_image

    def save(job: Job, pic: Picture) -> str:
        if job.dst is None:  # encoded whole first, so a failure never leaves half a file on stdout
            sys.stdout.buffer.write(encode_image(pic, job.fmt, quality, label="-"))
            sys.stdout.buffer.flush()
            return "-"
        job.dst.parent.mkdir(parents=True, exist_ok=True)
        write_stream(job.dst, lambda fh: write_image(pic, job.fmt, fh, quality, label=str(job.dst)))
        return str(job.dst)

    return save


@dataclass(frozen=True)
class DegradeOptions(BatchOptions):
    """``ops`` is the ordered list of (op name, spec text), e.g. [("haze", "medium"), ("noise", "25")]."""

    ops: tuple[tuple[str, str], ...] = ()
    seed: int = 0
    pairs: bool = False


def degrade(inputs: list[str], output: str, options: DegradeOptions, reporter: Reporter | None = None) -> RunReport:
    """Apply synthetic degradations; results depend only on the seed and each file's relative path.

    Every output gets a ``<output name>.json`` sidecar with the exact parameters. With
    ``pairs``, degraded images go to ``output/input/`` and clean copies to ``output/target/``.
    """
    from airtool.degrade import Chain
    from airtool.engine.batch import run_batch

    chain = Chain.parse(list(options.ops))
    if options.pairs and output == "-":
        raise UsageError("--pairs needs an output folder")
    dest = str(Path(output) / "input") if options.pairs else output
    work = plan(inputs, dest, recursive=options.recursive, suffix=options.suffix, fmt=options.format)
    if options.pairs and any(job.src is None for job in work.jobs):
        raise UsageError("--pairs cannot read from stdin")
    _clean_temps(work, output)
    if not options.dry_run:
        _check_writable(work, output)
    stages = _degrade_stages(chain, options, Path(output) if options.pairs else None)
    return run_batch(work, stages, reporter or NullReporter(), overwrite=options.overwrite, dry_run=options.dry_run)


def _degrade_stages(chain: Any, options: DegradeOptions, pairs_root: Path | None):
    import json

    import torch

    from airtool.engine.batch import Stages
    from airtool.io.atomic import write_bytes

    save_image = _saver(options.quality)

    def load(job: Job) -> Picture:
        data = sys.stdin.buffer.read() if job.src is None else job.src
        return read_image(data, str(job.src) if job.src else "<stdin>", options.max_pixels)

    def compute(job: Job, pic: Picture) -> tuple[Picture, Picture, dict]:
        img = torch.from_numpy(np.ascontiguousarray(np.clip(pic.pixels, 0, 1))).permute(2, 0, 1)
        out, sidecar = chain.run(img, options.seed, Path(job.rel).as_posix())
        return pic, pic.with_pixels(out.permute(1, 2, 0).numpy()), sidecar

    def save(job: Job, item: tuple[Picture, Picture, dict]) -> str:
        clean, degraded, sidecar = item
        if job.dst is not None:
            job.dst.parent.mkdir(parents=True, exist_ok=True)
            if pairs_root is not None:
                target = pairs_root / "target" / job.dst.relative_to(pairs_root / "input")
                target.parent.mkdir(parents=True, exist_ok=True)
                write_bytes(target, encode_image(clean, job.fmt, options.quality, str(target)))
            write_bytes(job.dst.with_name(job.dst.name + ".json"), (json.dumps(sidecar, indent=1) + "\n").encode())
        return save_image(job, degraded)  # written last: its existence marks the job done

    return Stages(load=load, compute=compute, save=save, is_done=_output_exists, notes=lambda p: p.notes)
