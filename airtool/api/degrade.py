"""``api.degrade``: synthetic degradations over files, folders and videos, to build paired data.

Shares the engine's batch machinery with ``restore`` (``airtool.engine.inference``: ``batch``,
``files``, ``video_job``): planning, atomic saves, videos, and provenance-free resume (an output
that exists is done)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from airtool._version import __version__
from airtool.api.progress import default_reporter
from airtool.engine.inference.files import (
    check_writable,
    clean_temps,
    image_saver,
    loaded_notes,
    output_exists,
    read_input,
)
from airtool.engine.inference.options import BatchOptions
from airtool.engine.inference.video_job import check_codec, probe, run_video_job, with_videos
from airtool.errors import UsageError
from airtool.io.image import encode_image
from airtool.io.paths import VIDEO, Job, format_for, plan
from airtool.report import Reporter, RunReport


@dataclass(frozen=True)
class DegradeOptions(BatchOptions):
    """``ops`` is the ordered list of (op name, spec text), e.g. [("haze", "medium"), ("noise", "25")]."""

    ops: tuple[tuple[str, str], ...] = ()
    seed: int = 0
    pairs: bool = False
    per_frame: bool = False  # videos: draw every parameter again for each frame


def degrade(inputs: list[str], output: str, options: DegradeOptions, reporter: Reporter | None = None,
            progress: bool = False) -> RunReport:
    """Apply synthetic degradations; results depend only on the seed and each file's relative path.

    Every output gets a ``<output name>.json`` sidecar with the exact parameters. With
    ``pairs``, degraded images go to ``output/input/`` and clean copies to ``output/target/``.
    """
    from airtool.degrade import Chain
    from airtool.engine.inference.batch import run_batch

    chain = Chain.parse(list(options.ops))
    if options.pairs and output == "-":
        raise UsageError("--pairs needs an output folder")
    dest = str(Path(output) / "input") if options.pairs else output
    work = plan(inputs, dest, recursive=options.recursive, suffix=options.suffix, fmt=options.format)
    if options.pairs and any(job.src is None for job in work.jobs):
        raise UsageError("--pairs cannot read from stdin")
    clean_temps(work, output)
    if not options.dry_run:
        check_writable(work, output)
        check_codec(work, options)
    reporter = reporter or default_reporter(progress, "degrading")
    stages = _degrade_stages(chain, options, Path(output) if options.pairs else None, reporter)
    return run_batch(work, stages, reporter, overwrite=options.overwrite, dry_run=options.dry_run)


def _degrade_stages(chain: Any, options: DegradeOptions, pairs_root: Path | None, reporter: Reporter):
    import json

    import torch

    from airtool.engine.inference.batch import Stages
    from airtool.io.atomic import write_bytes

    save_image = with_videos(image_saver(options.quality))

    def load(job: Job) -> Any:
        if job.kind == VIDEO:
            return probe(job, options.max_pixels)
        return read_input(job, options.max_pixels)

    def compute(job: Job, pic: Any) -> Any:
        if job.kind == VIDEO:
            return _degrade_video(job, pic, chain, options, pairs_root, reporter)
        img = torch.from_numpy(np.ascontiguousarray(np.clip(pic.pixels, 0, 1))).permute(2, 0, 1)
        out, sidecar = chain.run(img, options.seed, Path(job.rel).as_posix())
        return pic, pic.with_pixels(out.permute(1, 2, 0).numpy()), sidecar

    def save(job: Job, item: Any) -> Any:
        if not isinstance(item, tuple):
            return save_image(job, item)  # a video, already written
        clean, degraded, sidecar = item
        if job.dst is not None:
            job.dst.parent.mkdir(parents=True, exist_ok=True)
            if pairs_root is not None:
                target = pairs_root / "target" / job.dst.relative_to(pairs_root / "input")
                target.parent.mkdir(parents=True, exist_ok=True)
                write_bytes(target, encode_image(clean, format_for(job, clean.format), options.quality, str(target)))
            write_bytes(job.dst.with_name(job.dst.name + ".json"), (json.dumps(sidecar, indent=1) + "\n").encode())
        return save_image(job, degraded)  # written last: its existence marks the job done

    return Stages(load=load, compute=compute, save=save, is_done=output_exists, notes=loaded_notes)


def _degrade_video(job: Job, info: Any, chain: Any, options: DegradeOptions, pairs_root: Path | None,
                   reporter: Reporter) -> Any:
    """The clip's parameters are drawn once; each frame gets fresh noise (``Chain.frame_params``).
    The sidecar and, with ``--pairs``, the clean copy (the input file itself) are written before
    the video's rename, so an existing video has both."""
    import json

    import torch

    from airtool.degrade.chain import file_rng
    from airtool.io.atomic import atomic_path, write_bytes

    relpath = Path(job.rel).as_posix()
    clip = chain.sample(file_rng(options.seed, relpath))

    def transform(index: int, pixels: np.ndarray) -> np.ndarray:
        params = chain.frame_params(clip, options.seed, relpath, index, per_frame=options.per_frame)
        img = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)
        return chain.apply(img, params).permute(1, 2, 0).numpy()

    def before_publish(frames: int) -> None:
        sidecar = chain.describe_video(clip, options.seed, relpath, frames, options.per_frame)
        write_bytes(job.dst.with_name(job.dst.name + ".json"), (json.dumps(sidecar, indent=1) + "\n").encode())
        if pairs_root is not None:
            import shutil

            target = pairs_root / "target" / job.dst.relative_to(pairs_root / "input")
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                shutil.copyfile(job.src, tmp)

    recipe = {"command": "degrade", "ops": [list(op) for op in options.ops], "seed": options.seed,
              "per_frame": options.per_frame, "airtool": __version__}
    return run_video_job(job, info, options, reporter, transform, recipe, before_publish)
