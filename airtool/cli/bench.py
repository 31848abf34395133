"""``airtool bench``: time models on this machine (ms per image, images/s, memory, GFLOP/s)."""

from __future__ import annotations

import itertools
import json
from typing import Annotated, Optional

import typer

from airtool.cli.common import Clip, Compile, Threads, fail

HELP = """Time the inference path of one or more models on random weights.

Warms up, then reports the median of --repeats timed runs per model, precision and size:
milliseconds and images per second, peak host and GPU memory, and the effective GFLOP/s
given the model's multiply-accumulates, with the fraction of the CPU's peak (from its vector
extensions, cores and clock). Comma lists run every combination.

Examples:

\b
  airtool bench
  airtool bench --model symunet,daair --size 256,512,1024 --precision fp32,bf16
  airtool bench --device cuda --batch 8 --json
"""


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _sizes(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _csv(value))
    except ValueError:
        raise typer.BadParameter(f"expected sizes in pixels such as 256,512, not {value!r}") from None


def bench(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name(s), comma-separated.")] = "symunet",
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
) -> None:
    from airtool.engine.bench import BenchOptions, run_bench
    from airtool.errors import AirtoolError

    try:
        options = BenchOptions(
            models=_csv(model), sizes=_sizes(size), precisions=_csv(precision), device=device, batch_size=batch,
            warmup=warmup, repeats=repeats, threads=threads, variant=variant, compile=compile, clip=clip,
        )
        results = run_bench(options)
        if json_out:
            for result in results:
                typer.echo(json.dumps(result.as_dict()))
        else:
            _print_table(results)
    except AirtoolError as err:
        fail(err)


def _print_table(results) -> None:
    from rich import box
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

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
    console = Console()
    compiled = ", torch.compile" if first.compiled else ""
    console.print(f"{first.device}, {first.threads} threads, batch {first.batch}, torch {first.torch}{compiled}, random weights")
    if not on_gpu:
        console.print(_peak_line(first.threads))
    with Live(table, console=console, auto_refresh=False) as live:
        for r in itertools.chain([first], results):
            gpu = [f"{r.peak_device_mb:,.0f}"] if on_gpu else []
            table.add_row(
                r.model, str(r.size), r.precision, f"{r.ms_per_image:,.1f}",
                f"{r.images_per_second:,.2f}", f"{r.peak_host_mb:,.0f}", *gpu, f"{r.macs_per_image / 1e9:,.2f}",
                f"{r.gflops:,.1f}", f"{100 * r.fraction_of_peak:.0f}" if r.fraction_of_peak else "-",
            )
            live.refresh()


def _peak_line(threads: int) -> str:
    """What "% peak" divides by: the CPU's peak for these threads (airtool/engine/cpu_peak.py)."""
    from airtool.engine.cpu_peak import this_cpu

    p = this_cpu()
    fp32, bf16 = p.gflops("fp32", threads), p.gflops("bf16", threads)
    if fp32 is None:
        return f"CPU peak unknown ({p.basis}); % peak not shown"
    return (f"CPU peak {fp32:,.0f} GFLOP/s fp32, {bf16:,.0f} bf16 ({', '.join(p.extensions) or 'no vector extensions'}: "
            f"{p.basis}; {min(threads, p.cpu.cores)} cores x {p.cpu.mhz:,.0f} MHz from {p.cpu.mhz_source})")


def register(app: typer.Typer) -> None:
    app.command(help=HELP)(bench)
