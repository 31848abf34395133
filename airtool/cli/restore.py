"""``airtool restore``: map options to ``RestoreOptions`` and call ``airtool.api.restore``."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from airtool.cli import complete
from airtool.cli.common import (
    Clip,
    Codec,
    Compile,
    Crf,
    DryRun,
    Format,
    JsonOut,
    MaxPixels,
    Overwrite,
    Paths,
    PixFmt,
    Quality,
    Quiet,
    Recursive,
    Segment,
    Suffix,
    Threads,
    fail,
    parse_tile,
)
from airtool.models import DEFAULT_MODEL

HELP = """Restore images and videos: files, folders (-r mirrors the tree) or - for stdin/stdout.

The last argument is the output: a folder, a file name, or - for stdout (in the
input's format, sniffed from its bytes, unless --format says otherwise).
Existing outputs are skipped, so running the same command again resumes an interrupted batch.
Videos (mp4, mkv, mov, webm, avi; found by content) keep their audio and subtitles, timing and
rotation; a long one resumes from its last finished segment. Needs: pip install 'airtool[video]'.
A picture that looks like low light or blur, which the weights were not trained for, is written
unchanged with a note saying so (--untrained restore restores it anyway).

Examples:

\b
  airtool restore photo.jpg clean.jpg
  airtool restore in/ out/ -r --model symunet --tile 512
  airtool restore clip.mp4 clean.mp4 --model symunet-s
  cat noisy.png | airtool restore - - > clean.png
"""


def restore(
    paths: Paths,
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (see 'airtool models').", autocompletion=complete.model_names)] = DEFAULT_MODEL,
    weights: Annotated[Optional[str], typer.Option("--weights", "-w", help="Weights file (.safetensors or .pth).")] = None,
    variant: Annotated[Optional[str], typer.Option("--variant", help="Model size variant; default: from the weights.")] = None,
    clip: Clip = None,
    device: Annotated[str, typer.Option("--device", "-d", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", "-p", help="auto, fp32, bf16 or fp16 (per-model policy).")] = "auto",
    tile: Annotated[str, typer.Option("--tile", "-t", help="Tile size in pixels; 0 = whole image; auto = by memory.")] = "auto",
    tile_overlap: Annotated[int, typer.Option("--tile-overlap", help="Overlap between tiles in pixels.")] = 32,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Tiles per device batch.")] = 1,
    recursive: Recursive = False,
    overwrite: Overwrite = False,
    suffix: Suffix = "",
    fmt: Format = None,
    quality: Quality = 95,
    max_pixels: MaxPixels = 256_000_000,
    threads: Threads = None,
    compile: Compile = False,
    untrained: Annotated[str, typer.Option("--untrained", metavar="keep|restore", help="Pictures that look like low light or blur, which the weights were not trained for: keep them unchanged, or restore them anyway. Either way each gets a note.")] = "keep",
    codec: Codec = None,
    crf: Crf = None,
    pix_fmt: PixFmt = None,
    segment: Segment = 10.0,
    json_out: JsonOut = False,
    quiet: Quiet = False,
    dry_run: DryRun = False,
) -> None:
    if len(paths) < 2:
        raise typer.BadParameter("give at least one input and an output", param_hint="INPUT... OUTPUT")
    *inputs, output = paths
    if output == "-" and sys.stdout.isatty():
        fail(_usage("refusing to write image data to a terminal; redirect stdout or give an output path"))
    if output == "-" and json_out:
        fail(_usage("--json cannot be used when the image goes to stdout"))
    from airtool.api import RestoreOptions
    from airtool.api import restore as run
    from airtool.errors import AirtoolError

    try:
        options = RestoreOptions(
            model=model, weights=weights, variant=variant, clip=clip, device=device, precision=precision, tile=parse_tile(tile),
            tile_overlap=tile_overlap, batch_size=batch_size, overwrite=overwrite, suffix=suffix, format=fmt,
            quality=quality, recursive=recursive, dry_run=dry_run, max_pixels=max_pixels, threads=threads,
            compile=compile, codec=codec, crf=crf, pix_fmt=pix_fmt, segment=segment, untrained=untrained,
        )
        report = run(inputs, output, options, make_reporter(json_out, quiet, "restored"))
    except AirtoolError as err:
        fail(err)
    raise typer.Exit(report.exit_code)


def make_reporter(json_out: bool, quiet: bool, verb: str):
    from airtool.report import ConsoleReporter, JsonReporter, MultiReporter

    console = ConsoleReporter(quiet=quiet or json_out, verb=verb)
    return MultiReporter(console, JsonReporter()) if json_out else console


def _usage(message: str) -> Exception:
    from airtool.errors import UsageError

    return UsageError(message)


def register(app: typer.Typer) -> None:
    app.command(help=HELP, no_args_is_help=True)(restore)
