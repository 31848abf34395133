"""Turn command-line inputs into a checked list of (input, output) jobs before any work starts.

Rules: ``-`` is stdin (input) or stdout (output). One input file with an output that has an
image suffix (and is not a folder) names the output file; otherwise the output is a folder.
Folders give the images directly inside them, or the whole tree with ``recursive`` (mirrored
under the output). Hidden files and non-image files are skipped. An output equal to an input,
two inputs mapping to one output, or an output folder that exists as a file stop the run before
it starts. GIF inputs are written as PNG (``name.gif`` -> ``name.png``): airtool writes no GIF.

Videos (``kind="video"``) are found by name (``.mp4``, ``.mkv``...) or, under any other name, by
their first bytes (see ``airtool.io.video``); their output keeps the input's name and container
(``--format`` is for images). One video input names its output file when the output has a video
suffix. Videos cannot come from stdin.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from airtool.errors import UsageError
from airtool.io.atomic import TMP_MARK
from airtool.io.image import FORMAT_BY_SUFFIX, SUFFIX_BY_FORMAT
from airtool.io.video import MUXER_BY_SUFFIX, is_video_candidate

IMAGE_SUFFIXES = frozenset(FORMAT_BY_SUFFIX)
VIDEO_OUTPUT_SUFFIXES = frozenset(MUXER_BY_SUFFIX)
STDIO = "-"
VIDEO = "video"


@dataclass(frozen=True)
class Job:
    """One unit of work. ``src``/``dst`` None mean stdin/stdout. ``rel`` is the display/seed key."""

    src: Path | None
    dst: Path | None
    rel: str
    fmt: str | None  # None: the input's own format, known once its bytes are read (stdin to stdout)
    kind: str = "image"  # or "video"


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) found while walking
    ignored: int = 0  # hidden or non-image files passed over


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and TMP_MARK not in path.name


def is_video(path: Path) -> bool:
    """A video by name or content (hidden and temporary files never are)."""
    return not path.name.startswith(".") and TMP_MARK not in path.name and is_video_candidate(path)


def output_format(src: Path | None, fmt: str | None) -> str | None:
    if fmt:
        key = fmt.upper().lstrip(".").replace("JPG", "JPEG").replace("TIFF", "TIF").replace("TIF", "TIFF")
        if key not in SUFFIX_BY_FORMAT or key == "GIF":
            raise UsageError(f"unsupported --format {fmt!r}; use png, jpg, tif, webp or bmp")
        return key
    if src is None:
        return None  # stdin: sniffed from the bytes (``format_for``)
    fmt_in = FORMAT_BY_SUFFIX[src.suffix.lower()]
    return "PNG" if fmt_in == "GIF" else fmt_in


def format_for(job: Job, decoded: str) -> str:
    """The format to write ``job`` in: its planned one, else the decoded input's (GIF -> PNG,
    MPO, a camera JPEG with extra pictures, -> JPEG)."""
    if job.fmt:
        return job.fmt
    fmt = {"GIF": "PNG", "MPO": "JPEG"}.get(decoded, decoded)
    return fmt if fmt in SUFFIX_BY_FORMAT else "PNG"


def output_name(rel: Path, fmt: str, suffix: str) -> Path:
    ext = rel.suffix if FORMAT_BY_SUFFIX.get(rel.suffix.lower()) == fmt else SUFFIX_BY_FORMAT[fmt]
    return rel.with_name(rel.stem + suffix + ext)


def plan(
    inputs: list[str], output: str, *, recursive: bool = False, suffix: str = "", fmt: str | None = None
) -> Plan:
    """Build and check the job list. Raises ``UsageError`` for plans that would lose data."""
    if not inputs:
        raise UsageError("no inputs given")
    if STDIO in inputs:
        return _plan_stdin(inputs, output, fmt)
    result = Plan()
    single = len(inputs) == 1 and Path(inputs[0]).is_file()
    out = Path(output) if output != STDIO else None
    if len(inputs) == 1 and not _exists(Path(inputs[0])):
        # A lone input that does not exist fails like any missing input (exit 3), whatever the output.
        result.problems.append((inputs[0], "no such file or folder"))
        return result
    if out is None and not single:
        raise UsageError("writing to stdout (-) needs exactly one input file")
    if single and is_video(Path(inputs[0])) and Path(inputs[0]).suffix.lower() not in IMAGE_SUFFIXES:
        result.jobs.append(_single_video(Path(inputs[0]), out, suffix))
    elif single and (out is None or _names_file(out)):
        src = Path(inputs[0])
        if out is not None and fmt is None and FORMAT_BY_SUFFIX[out.suffix.lower()] == "GIF":
            raise UsageError(f"{out}: airtool does not write GIF; name the output .png (or give --format)")
        fmt_out = output_format(out if out is not None and fmt is None else src, fmt)
        result.jobs.append(Job(src, out, src.name, fmt_out))
    else:
        if out is not None and (out.exists() or out.is_symlink()) and not out.is_dir():
            raise UsageError(f"{out}: the output folder exists and is not a folder; give a folder (or a new name)")
        for item in inputs:
            _collect(Path(item), out, recursive, suffix, fmt, result)
    _check(result.jobs)
    return result


def _plan_stdin(inputs: list[str], output: str, fmt: str | None) -> Plan:
    if len(inputs) != 1:
        raise UsageError("stdin (-) cannot be mixed with other inputs")
    if output != STDIO and not _names_file(Path(output)):
        raise UsageError("with stdin input, the output must be - or a file name with an image suffix")
    dst = None if output == STDIO else Path(output)
    fmt_out = output_format(dst, fmt) if dst is not None else output_format(None, fmt)
    return Plan(jobs=[Job(None, dst, "<stdin>", fmt_out)])


def _single_video(src: Path, out: Path | None, suffix: str) -> Job:
    if out is None:
        raise UsageError(f"{src}: a video cannot be written to stdout; give an output file or folder")
    if out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir():
        raise UsageError(f"{src} is a video: name the output with a video suffix (.mp4, .mkv, .mov, .webm, .avi) or give a folder")
    if out.suffix.lower() in VIDEO_OUTPUT_SUFFIXES and not out.is_dir():
        return Job(src, out, src.name, VIDEO, VIDEO)
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        raise UsageError(f"{out}: the output folder exists and is not a folder; give a folder (or a new name)")
    return Job(src, out / video_output_name(Path(src.name), suffix), src.name, VIDEO, VIDEO)


def video_output_name(rel: Path, suffix: str) -> Path:
    return rel.with_name(rel.stem + suffix + rel.suffix)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _names_file(out: Path) -> bool:
    return out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir()


def _collect(item: Path, out: Path, recursive: bool, suffix: str, fmt: str | None, result: Plan) -> None:
    if item.is_dir():
        for path, rel in _walk(item, out, recursive, result):
            if is_image_name(path):
                dst = out / output_name(rel, output_format(path, fmt), suffix)
                result.jobs.append(Job(path, dst, str(rel), output_format(path, fmt)))
            elif is_video(path):
                result.jobs.append(Job(path, out / video_output_name(rel, suffix), str(rel), VIDEO, VIDEO))
            else:
                result.ignored += 1
    elif item.is_file() and item.suffix.lower() not in IMAGE_SUFFIXES and is_video(item):
        result.jobs.append(Job(item, out / video_output_name(Path(item.name), suffix), item.name, VIDEO, VIDEO))
    elif item.is_file() or item.is_symlink():
        fmt_out = output_format(item, fmt) if item.suffix.lower() in IMAGE_SUFFIXES else (fmt or "PNG").upper()
        rel = Path(item.name)
        result.jobs.append(Job(item, out / output_name(rel, fmt_out, suffix), item.name, fmt_out))
    else:
        result.problems.append((str(item), "no such file or folder"))


def _walk(root: Path, out: Path, recursive: bool, result: Plan):
    """Yield (path, path relative to root), sorted; follows folder links but never loops."""
    seen = {os.path.realpath(root)}
    out_real = os.path.realpath(out)
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            result.problems.append((str(folder), f"cannot list folder ({err.strerror})"))
            continue
        subdirs = []
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                result.ignored += 1
            elif _is_dir(entry):
                if recursive:
                    subdirs.append(path)
            else:
                yield path, path.relative_to(root)
        for sub in reversed(subdirs):
            real = os.path.realpath(sub)
            if real == out_real:
                continue  # the output folder inside an input folder is not an input
            if real in seen:
                result.problems.append((str(sub), "symbolic link loop (folder already visited)"))
                continue
            seen.add(real)
            stack.append(sub)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _check(jobs: list[Job]) -> None:
    targets: dict[str, Job] = {}
    for job in jobs:
        if job.dst is None:
            continue
        key = os.path.realpath(job.dst)
        if job.src is not None and key == os.path.realpath(job.src):
            raise UsageError(f"{job.src}: output would overwrite the input; choose another output folder or --suffix")
        if key in targets:
            raise UsageError(f"{targets[key].src} and {job.src} would both be written to {job.dst}; use --suffix or separate runs")
        targets[key] = job
