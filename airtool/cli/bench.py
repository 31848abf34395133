"""``airtool bench``: time models on this machine (ms per image, images/s, memory, GFLOP/s)."""

from __future__ import annotations

import itertools
import json
from typing import Annotated, Optional

import typer

from airtool.cli import complete
from airtool.cli.common import Clip, Compile, Threads, fail
from airtool.models import DEFAULT_MODEL

HELP = """Time the inference path of one or more models on random weights.

Warms up, then reports the median of --repeats timed runs per model, precision and size:
milliseconds and images per second, peak host and GPU memory, and the effective GFLOP/s
given the model's multiply-accumulates, with the fraction of the CPU's peak (from its vector
extensions, cores and clock). Comma lists run every combination. The first line names the
CPU, its vector extensions and torch's kernel set (figures differ several-fold between CPUs);
on a terminal a progress bar follows every warm-up and timed run.

Examples:

\b
  airtool bench
  airtool bench --model symunet,daair --size 256,512,1024 --precision fp32,bf16
  airtool bench --device cuda --batch 8 --json
  airtool bench --auto-tile --model symunet-s,daair
"""


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _sizes(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _csv(value))
    except ValueError:
        raise typer.BadParameter(f"expected sizes in pixels such as 256,512, not {value!r}") from None


def bench(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name(s), comma-separated.", autocompletion=complete.model_lists)] = DEFAULT_MODEL,
    size: Annotated[str, typer.Option("--size", "-s", help="Square image side(s) in pixels, comma-separated.")] = "256",
    device: Annotated[str, typer.Option("--device", "-d", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", "-p", help="auto, fp32, bf16, fp16; comma-separated.")] = "auto",
    batch: Annotated[int, typer.Option("--batch", "-b", help="Images per forward pass.")] = 1,
    repeats: Annotated[int, typer.Option("--repeats", help="Timed runs per configuration (median reported).")] = 3,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed runs first.")] = 1,
    variant: Annotated[Optional[str], typer.Option("--variant", help="Model size variant (default: the model's).")] = None,
    clip: Clip = None,
    threads: Threads = None,
    compile: Compile = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per configuration on stdout.")] = False,
    auto_tile: Annotated[bool, typer.Option("--auto-tile", help="Measure again, up to 1024 px and without restore's time limit, the timings behind --tile auto on this CPU (kept for restore), and show the tile each image size gets.")] = False,
) -> None:
    from airtool.api import BenchOptions
    from airtool.api import bench as run_bench
    from airtool.errors import AirtoolError

    try:
        options = BenchOptions(
            models=_csv(model), sizes=_sizes(size), precisions=_csv(precision), device=device, batch_size=batch,
            warmup=warmup, repeats=repeats, threads=threads, variant=variant, compile=compile, clip=clip,
        )
        if auto_tile:
            _auto_tile(options, json_out)
            return
        with _Progress() as progress:
            results = run_bench(options, on_event=progress.update)
            if json_out:
                for result in results:
                    typer.echo(json.dumps(result.as_dict()))
            else:
                _print_table(results, progress)
    except AirtoolError as err:
        fail(err)


class _Progress:
    """A transient bar on stderr, when it is a terminal, over every step of the bench; each
    finished configuration is printed above it as it ends."""

    def __enter__(self) -> _Progress:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.bar = None
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("bench", total=None)
        return self

    def update(self, event: dict) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=event["done"], total=event["total"], description=event["label"])

    def print(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _auto_tile(options, json_out: bool) -> None:
    from rich.console import Console

    from airtool.api import auto_tile as run_auto_tile

    console = Console(soft_wrap=True)
    with _Progress() as progress:
        for r in run_auto_tile(options, on_event=progress.update):
            if json_out:
                typer.echo(json.dumps(r.as_dict()))
                continue
            console.print(f"{r.model} {r.precision}, {r.threads} threads on {r.cpu}")
            per_pixel = ", ".join(f"{side}px {ms:,.0f} ms ({ms * 1000 / side**2:.2f} us/px)" for side, ms in r.ms.items())
            console.print(f"  one pass: {per_pixel}; {r.bytes_per_pixel:,.0f} bytes/pixel")
            picks = ", ".join(f"{size}: {'whole image' if tile == 0 else f'{tile} px'}" for size, tile in r.chosen.items())
            console.print(f"  --tile auto: {picks}")


def _print_table(results, progress: _Progress) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from airtool.api import cpu_description

    console = Console(soft_wrap=True)
    console.print(f"CPU: {cpu_description()}")  # at once, before the first model builds
    results = iter(results)
    first = next(results, None)  # errors in the first configuration print before any table
    if first is None:
        return
    on_gpu = first.peak_device_mb is not None
    headers = ["model", "size", "prec", "ms/img", "img/s", "host MB"] + ["GPU MB"] * on_gpu + ["GMAC", "GFLOP/s", "% peak"]
    table = Table(*headers, box=box.SIMPLE)
    table.columns[0].no_wrap = True
    for column in table.columns[1:]:
        column.justify = "right"
    compiled = ", torch.compile" if first.compiled else ""
    console.print(f"{first.device}, {first.threads} threads, batch {first.batch}, torch {first.torch}{compiled}, random weights")
    if not on_gpu:
        console.print(_peak_line(first.threads))
    for r in itertools.chain([first], results):
        gpu = [f"{r.peak_device_mb:,.0f}"] if on_gpu else []
        table.add_row(
            r.model, str(r.size), r.precision, f"{r.ms_per_image:,.1f}",
            f"{r.images_per_second:,.2f}", f"{r.peak_host_mb:,.0f}", *gpu, f"{r.macs_per_image / 1e9:,.2f}",
            f"{r.gflops:,.1f}", f"{100 * r.fraction_of_peak:.0f}" if r.fraction_of_peak else "-",
        )
        progress.print(f"{r.model} {r.size}px {r.precision}: {r.ms_per_image:,.1f} ms/img")
    console.print(table)


def _peak_line(threads: int) -> str:
    """What "% peak" divides by: the CPU's peak for these threads (airtool/engine/hardware/cpu_peak.py)."""
    from airtool.api import cpu_peak

    p = cpu_peak()
    fp32, bf16 = p.gflops("fp32", threads), p.gflops("bf16", threads)
    if fp32 is None:
        return f"CPU peak unknown ({p.basis}); % peak not shown"
    return (f"CPU peak {fp32:,.0f} GFLOP/s fp32, {bf16:,.0f} bf16 ({', '.join(p.extensions) or 'no vector extensions'}: "
            f"{p.basis}; {min(threads, p.cpu.cores)} cores x {p.cpu.mhz:,.0f} MHz from {p.cpu.mhz_source})")


def register(app: typer.Typer) -> None:
    app.command(help=HELP)(bench)
