"""The files of a batch command (restore and degrade both): reading an input, writing an output,
and what is already at the destination.

Every output is written under a temporary name and renamed (``airtool.io.atomic``), so an output
that exists is complete: a rerun skips it as done, and what a killed run left (temporary files,
finished videos' segment folders) is removed before the next run starts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airtool.io.image import Picture, encode_image, read_image
from airtool.io.paths import VIDEO, Job, Plan, format_for

# Called with an output's temporary file just before its rename (e.g. to record its provenance).
BeforeRename = Callable[[Path], None]


def output_exists(job: Job) -> bool:
    """Outputs are written atomically, so an existing file is complete (a folder is not an output)."""
    return job.dst is not None and job.dst.is_file()


def has_work(work: Plan, overwrite: bool) -> bool:
    """Whether any job would write: without it, a run loads no model and checks no destination."""
    return any(overwrite or not output_exists(job) for job in work.jobs)


def destination_folder(work: Plan, output: str) -> Path | None:
    """The folder the outputs land in: ``output``, or for one named output file its folder; None
    for stdout. The writable check and the provenance record both need it."""
    if output == "-":
        return None
    single_file = len(work.jobs) == 1 and work.jobs[0].dst == Path(output)
    return Path(output).parent if single_file else Path(output)


def check_writable(work: Plan, output: str) -> None:
    """A destination that cannot be written is one ``OutputError`` before any work (and before a
    model loads), not one failure per file."""
    from airtool.io.atomic import check_writable as check_folder

    folder = destination_folder(work, output)
    if folder is not None:
        check_folder(folder)


def clean_temps(work: Plan, output: str) -> None:
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


def read_input(job: Job, max_pixels: int, native: bool = False) -> Picture:
    """Decode the job's picture, from its file or (no source) from stdin. ``native``: 8/16-bit
    pixels stay uint8/uint16, as restore wants (the Restorer converts them window by window)."""
    data = sys.stdin.buffer.read() if job.src is None else job.src
    return read_image(data, str(job.src) if job.src else "<stdin>", max_pixels, native=native)


def loaded_notes(item: Any) -> list[str]:
    """The notes a decoded input carries (e.g. an animated picture's first frame only)."""
    return getattr(item, "notes", [])


def image_saver(quality: int, before_rename: Callable[[Job], BeforeRename | None] = lambda job: None
                ) -> Callable[[Job, Picture], str]:
    """``save`` for pictures: atomically to the job's output, or encoded whole to stdout, so a
    failure never leaves half a file there. Returns the output's name for the report."""
    from airtool.io.atomic import write_stream
    from airtool.io.image import write_image

    def save(job: Job, pic: Picture) -> str:
        fmt = format_for(job, pic.format)
        if job.dst is None:
            sys.stdout.buffer.write(encode_image(pic, fmt, quality, label="-"))
            sys.stdout.buffer.flush()
            return "-"
        job.dst.parent.mkdir(parents=True, exist_ok=True)
        write_stream(job.dst, lambda fh: write_image(pic, fmt, fh, quality, label=str(job.dst)), before_rename(job))
        return str(job.dst)

    return save
