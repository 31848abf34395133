"""Small helpers shared by the command modules (no heavy imports)."""

from __future__ import annotations

from typing import Annotated, NoReturn, Optional

import typer

# Options shared by the batch commands (restore, degrade), declared once.
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Walk folders recursively, mirroring the tree.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Redo outputs that already exist.")]
Suffix = Annotated[str, typer.Option("--suffix", help="Append to output file names, e.g. _restored.")]
Format = Annotated[Optional[str], typer.Option("--format", "-f", help="Output format: png, jpg, tif, webp (default: the input's).")]
Quality = Annotated[int, typer.Option("--quality", "-q", help="JPEG/WebP quality.")]
MaxPixels = Annotated[int, typer.Option("--max-pixels", help="Refuse images with more pixels (decompression bombs).")]
JsonOut = Annotated[bool, typer.Option("--json", help="One JSON object per file on stdout, then a summary.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="Only print failures.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="List the work without doing it.")]
Threads = Annotated[Optional[int], typer.Option("--threads", help="CPU threads for torch (default: torch's choice).")]
Clip = Annotated[
    Optional[str],
    typer.Option("--clip", metavar="PATH", envvar="AIRTOOL_CLIP",
                 help="se-symunet only: local CLIP ViT-L/14 (a Hugging Face folder, or OpenAI's ViT-L-14.pt)."),
]
Compile = Annotated[bool, typer.Option("--compile", help="torch.compile the model (opt-in; pays on GPUs, see the README).")]
# Options for video inputs (the output follows the input unless these are given).
Codec = Annotated[Optional[str], typer.Option("--codec", help="Video: ffmpeg encoder or codec, e.g. libx264, hevc, vp9 (default: the input's).")]
Crf = Annotated[Optional[int], typer.Option("--crf", help="Video: constant quality, 0-63 (default: the input's bit rate).")]
PixFmt = Annotated[Optional[str], typer.Option("--pix-fmt", help="Video: pixel format, e.g. yuv420p (default: the input's).")]
Segment = Annotated[float, typer.Option("--segment", help="Video: seconds per resumable segment, kept until the final mux.")]
Paths = Annotated[list[str], typer.Argument(help="Inputs (files, folders or -), then the output.", metavar="INPUT... OUTPUT")]


def fail(err: Exception) -> NoReturn:
    """Print an airtool error as one line (control characters in names escaped) and exit with its code."""
    from airtool.report import one_line, print_error

    print_error(f"airtool: error: {one_line(str(err))}")
    raise typer.Exit(getattr(err, "exit_code", 1))


def parse_tile(value: str) -> int | str:
    if value == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"expected auto, 0 or a number of pixels, not {value!r}") from None
