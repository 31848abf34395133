"""``airtool evaluate``: map options to ``EvalOptions`` and render what the engine returns.

Nothing heavy at import time (no torch, no numpy): imports happen inside the command.
Results go to stdout (a table, or ``--json`` / ``--csv`` / ``--markdown``); progress and
messages go to stderr.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from airtool.cli import complete
from airtool.cli.common import Clip, fail

HELP = """Score a model with PSNR/SSIM on paired images, exactly as the papers do.

--data DIR holds input/ and target/ (pairs by file stem), or only clean images together with
--task noise:SIGMA (noisy inputs are made the papers' way: sorted files, seed 0, uint8
truncation). --suite runs the 3-task or 5-task benchmark over --data-root (default
$AIRTOOL_DATA, else ../shared/data from the working directory: the folder layout of the
README's 'Training and benchmark data'). The identity model gives the degraded-input baseline.

Protocols: promptir (AirNet/PromptIR/DaAIR/AnyIR: RGB, crop to x16, 7x7 uniform SSIM),
moce (Gaussian SSIM), symunet (unclamped output), ndr (Wang SSIM on 0-255),
basicsr-y (8-bit, BT.601 Y, --crop-border).

Examples:

\b
  airtool evaluate --model identity --data ../shared/data/Rain100L
  airtool evaluate -m symunet-s -w weights/symunet-s-aio3.safetensors --data ../shared/data/CBSD68 --task noise:25
  airtool evaluate -m daair --suite 3task --markdown --data-root ../shared/data
"""


def evaluate(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (see 'airtool models'); identity = input baseline.", autocompletion=complete.model_names)],
    data: Annotated[Optional[Path], typer.Option("--data", help="Folder with input/ + target/, or clean images with --task noise:SIGMA.")] = None,
    weights: Annotated[Optional[str], typer.Option("--weights", "-w", help="Weights file (.safetensors or .pth).")] = None,
    variant: Annotated[Optional[str], typer.Option("--variant", help="Model size variant; default: from the weights.")] = None,
    clip: Clip = None,
    task: Annotated[Optional[str], typer.Option("--task", help="noise:SIGMA, rain, haze, blur or lowlight.")] = None,
    protocol: Annotated[str, typer.Option("--protocol", help="promptir, moce, basicsr-y, symunet or ndr.")] = "promptir",
    crop_border: Annotated[Optional[int], typer.Option("--crop-border", help="Ignore N border pixels (default: the protocol's).")] = None,
    save_images: Annotated[Optional[Path], typer.Option("--save-images", help="Write the restored images (PNG) here.")] = None,
    suite: Annotated[Optional[str], typer.Option("--suite", help="Benchmark preset: 3task or 5task.")] = None,
    data_root: Annotated[Optional[Path], typer.Option("--data-root", help="Benchmark data for --suite [default: $AIRTOOL_DATA or ../shared/data].")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Only the first N pairs (sorted) of each set.")] = None,
    device: Annotated[str, typer.Option("--device", "-d", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", "-p", help="fp32 (the papers' protocol), bf16 or fp16.")] = "fp32",
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per image, then the means (psnr, ssim, count).")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV rows on stdout, the mean last.")] = False,
    markdown_out: Annotated[bool, typer.Option("--markdown", help="A Markdown table on stdout.")] = False,
) -> None:
    from airtool.errors import AirtoolError, UsageError

    try:
        if json_out + csv_out + markdown_out > 1:
            raise UsageError("choose at most one of --json, --csv and --markdown")
        fmt = "json" if json_out else "csv" if csv_out else "markdown" if markdown_out else "table"
        from airtool.api import EvalOptions
        from airtool.api import evaluate as run

        opts = EvalOptions(model=model, data=data, weights=weights, variant=variant, clip=clip, task=task, protocol=protocol,
                           crop_border=crop_border, save_images=save_images, limit=limit, device=device, precision=precision,
                           suite=suite, data_root=data_root)
        with _progress() as on_event:
            report = run(opts, on_event=on_event)
        if suite is not None:
            _print_suite(report, fmt)
        else:
            _print_report(report, fmt)
    except AirtoolError as err:
        fail(err)


class _progress:
    """A transient rich progress bar on stderr when it is a terminal; a no-op callback otherwise."""

    def __enter__(self) -> Any:
        self.bar = None
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import Progress

        self.bar = Progress(console=Console(stderr=True), transient=True)
        self.bar.start()
        self.task = self.bar.add_task("evaluating", total=None)
        return self.update

    def update(self, event: dict[str, Any]) -> None:
        assert self.bar is not None
        self.bar.update(self.task, completed=event["done"], total=event["total"],
                        description=f"{event['name']} {event['psnr']:.2f} dB")

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def finite(value: float) -> float | str:
    """JSON-safe number: ``inf`` (identical images) and NaN become strings."""
    return value if math.isfinite(value) else str(value)


def _num(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if value == value and abs(value) != float("inf") else str(value)


def _print_report(report: Any, fmt: str) -> None:
    rows = [(r.name, r.psnr, r.ssim, r.seconds) for r in report.rows]
    mean = ("mean", report.psnr, report.ssim, report.seconds_per_image)
    if fmt == "json":
        import json

        for (name, p, s, sec), row in zip(rows, report.rows, strict=True):
            typer.echo(json.dumps({"name": name, "psnr": finite(p), "ssim": s, **row.others, "seconds": sec}))
        summary = report.summary()
        summary["psnr"] = finite(summary["psnr"])
        typer.echo(json.dumps(summary))
        return
    task = f" ({report.task})" if report.task else ""
    title = f"{report.model} on {report.dataset}{task}, protocol {report.protocol}"
    _emit_table(title, ["image", "PSNR", "SSIM", "s/img"], [_fmt_row(r) for r in rows], _fmt_row(mean), fmt)


def _fmt_row(row: tuple[str, float, float, float]) -> list[str]:
    name, p, s, sec = row
    return [name, _num(p, 2), _num(s, 4), _num(sec, 3)]


def _emit_table(title: str, header: list[str], rows: list[list[str]], last: list[str] | None, fmt: str) -> None:
    """Rows plus an optional bold summary row, as CSV, Markdown or a rich table on stdout."""
    if fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerows([header, *rows, *([last] if last else [])])
    elif fmt == "markdown":
        typer.echo(f"**{title}**\n")
        typer.echo("| " + " | ".join(header) + " |")
        typer.echo("|" + "---|" * len(header))
        for row in [*rows, *([[f"**{c}**" for c in last]] if last else [])]:
            typer.echo("| " + " | ".join(row) + " |")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(*header, title=title, show_footer=False)
        for row in rows:
            table.add_row(*row)
        if last:
            table.add_section()
            table.add_row(*last, style="bold")
        Console().print(table)


def _print_suite(report: Any, fmt: str) -> None:
    """Paper-style: one column per set (PSNR/SSIM), then the average; missing sets say why."""
    summary = report.summary()
    if fmt == "json":
        import json

        for row in report.rows:
            typer.echo(json.dumps({k: finite(v) if k == "psnr" else v for k, v in row.summary().items()}))
        typer.echo(json.dumps({**summary, "psnr": finite(summary["psnr"])}))
        return
    header = ["model"] + [f"{r.dataset} {r.task}" for r in report.rows] + ["Avg"]
    cells = [f"{r.report.psnr:.2f}/{r.report.ssim:.3f}" if r.report else "missing" for r in report.rows]
    avg = f"{summary['psnr']:.2f}/{summary['ssim']:.3f}" if summary["count"] else "-"
    title = f"{report.suite}, protocol {report.protocol} (PSNR/SSIM; {summary['count']} sets scored)"
    _emit_table(title, header, [[report.model, *cells, avg]], None, fmt)
    for row in report.rows:
        if row.missing:
            typer.echo(f"airtool: missing {row.dataset} {row.task}: {row.missing}", err=True)


def register(app: typer.Typer) -> None:
    app.command(help=HELP, no_args_is_help=True)(evaluate)
