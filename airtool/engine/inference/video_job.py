"""A video as one job of a batch command (restore and degrade both).

``run_batch`` sees a video as one job: ``load`` probes it (``probe``), ``compute`` streams all its
frames through a transform and writes the output itself (``run_video_job``, over
``airtool.engine.inference.video``), and ``save`` only reports what was written
(``with_videos``). A ``--codec`` the bundled ffmpeg cannot write is refused before any work
(``check_codec``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airtool.engine.inference.batch import Saved
from airtool.engine.inference.options import BatchOptions
from airtool.engine.inference.video import Transform, VideoOutcome
from airtool.io.paths import VIDEO, Job, Plan
from airtool.report import Reporter


def check_codec(work: Plan, options: BatchOptions) -> None:
    """A ``--codec`` the bundled ffmpeg cannot write is a usage error before any work."""
    if not options.codec or not any(job.kind == VIDEO for job in work.jobs):
        return
    from airtool.errors import InputError
    from airtool.io.encode import check_codec as check_encoder
    from airtool.io.video import ffmpeg_exe

    try:
        ffmpeg = ffmpeg_exe("--codec")
    except InputError:
        return  # no video support: each video says what to install
    check_encoder(ffmpeg, options.codec)


def probe(job: Job, max_pixels: int) -> Any:
    """The video's ``VideoInfo`` (size, frames, rate, streams): what ``load`` gives ``compute``."""
    from airtool.io.video import probe as probe_video

    return probe_video(job.src, str(job.src), max_pixels)


def run_video_job(job: Job, info: Any, options: BatchOptions, reporter: Reporter, transform: Transform,
                  recipe: dict, before_publish: Callable[[int], None] | None = None) -> VideoOutcome:
    """Run one video through ``transform`` (frame index, pixels -> pixels) into its output, with the
    batch's encoder settings. ``recipe``: every setting that changes the frames (kept segments of
    an interrupted run are reused only under an equal one)."""
    from airtool.engine.inference.video import VideoTask, run_video

    job.dst.parent.mkdir(parents=True, exist_ok=True)
    task = VideoTask(info=info, dst=job.dst, label=str(job.src), transform=transform, recipe=recipe,
                     codec=options.codec, crf=options.crf, pix_fmt=options.pix_fmt, segment_seconds=options.segment,
                     fresh=options.overwrite, before_publish=before_publish)
    name = job.src.name
    return run_video(task, lambda done, total: reporter.frames(name, done, total))


def with_videos(save_image: Callable[[Job, Any], Any]) -> Callable[[Job, Any], Any]:
    """``save`` for a batch that may hold videos: a finished video is already written (atomically,
    by ``run_video``); it is reported with its frame count, rate and duration."""

    def save(job: Job, item: Any) -> Any:
        if isinstance(item, VideoOutcome):
            return Saved(item.path, item.notes, item.to_extra())
        return save_image(job, item)

    return save
