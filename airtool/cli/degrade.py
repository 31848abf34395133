"""``airtool degrade``: synthetic noise, rain, haze, blur, low light and JPEG, seeded."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from airtool.cli.common import (
    Codec,
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
    fail,
)
from airtool.cli.restore import make_reporter
from airtool.degrade.registry import NAMES  # the op names only: no torch at startup

HELP = """Degrade images to build paired data. Several degradation flags chain in the order given.

SPEC is a preset word (light, medium, heavy) or key=value pairs. The same --seed gives
byte-identical outputs; each output gets a <name>.json sidecar with the exact parameters.
Videos: noise is fresh for every frame; haze, rain direction and blur kernel stay fixed for the
clip unless --per-frame is given.

Examples:

\b
  airtool degrade clean/ noisy/ --noise 25 --seed 0
  airtool degrade clean/ pairs/ --pairs --haze medium --noise 15
  airtool degrade photo.png rainy.png --rain heavy
  airtool degrade in/ out/ --blur motion:length=15,angle=30 --jpeg 40
  airtool degrade clip.mp4 rainy.mp4 --rain medium --noise 10
"""


def degrade(
    ctx: typer.Context,
    paths: Paths,
    noise: Annotated[Optional[str], typer.Option("--noise", help="Gaussian noise: sigma on 0-255, e.g. 25, or SPEC (15,gray).")] = None,
    rain: Annotated[Optional[str], typer.Option("--rain", help="Rain streaks SPEC, e.g. light or density=0.05,angle=10.")] = None,
    haze: Annotated[Optional[str], typer.Option("--haze", help="Haze SPEC, e.g. medium or beta=1.0,A=0.9,depth=linear.")] = None,
    blur: Annotated[Optional[str], typer.Option("--blur", help="Blur SPEC: shake, motion:length=15,angle=30, defocus:radius=4, gauss:sigma=2.")] = None,
    lowlight: Annotated[Optional[str], typer.Option("--lowlight", help="Low light SPEC, e.g. medium or ev=-3,gamma=1.2.")] = None,
    jpeg: Annotated[Optional[str], typer.Option("--jpeg", help="JPEG quality, e.g. 20.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed; outputs depend only on it and each file's relative path.")] = 0,
    pairs: Annotated[bool, typer.Option("--pairs", help="Write OUTPUT/input (degraded) and OUTPUT/target (clean).")] = False,
    per_frame: Annotated[bool, typer.Option("--per-frame", help="Videos: draw every parameter again for each frame.")] = False,
    recursive: Recursive = False,
    overwrite: Overwrite = False,
    suffix: Suffix = "",
    fmt: Format = None,
    quality: Quality = 95,
    max_pixels: MaxPixels = 256_000_000,
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
    from airtool.api import DegradeOptions
    from airtool.api import degrade as run
    from airtool.errors import AirtoolError, UsageError

    # Click fills ctx.params in command-line order, which is the order the ops are applied in.
    ops = tuple((name, str(value)) for name, value in ctx.params.items() if name in NAMES and value is not None)
    try:
        if output == "-" and sys.stdout.isatty():
            raise UsageError("refusing to write image data to a terminal; redirect stdout or give an output path")
        options = DegradeOptions(
            ops=ops, seed=seed, pairs=pairs, overwrite=overwrite, suffix=suffix, format=fmt, quality=quality,
            recursive=recursive, dry_run=dry_run, max_pixels=max_pixels, per_frame=per_frame, codec=codec, crf=crf,
            pix_fmt=pix_fmt, segment=segment,
        )
        report = run(inputs, output, options, make_reporter(json_out, quiet, "degraded"))
    except AirtoolError as err:
        fail(err)
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    app.command(help=HELP, no_args_is_help=True)(degrade)
