"""``api.bench`` and ``api.auto_tile``: inference speed per model, size and precision, and the
CPU tile timings behind ``--tile auto``. Results are yielded as each configuration ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from airtool.api.progress import EventSink, Progress, progress_event

if TYPE_CHECKING:
    from airtool.engine.hardware.cpu_peak import CpuPeak
    from airtool.engine.inference.bench import AutoTileResult, BenchOptions, BenchResult


def bench(options: BenchOptions, *, on_event: EventSink | None = None, progress: bool = False) -> Iterator[BenchResult]:
    """Events: ``progress`` (steps ``done`` of ``total``, ``label`` = what runs now)."""
    from airtool.engine.inference.bench import run_bench

    with Progress(on_event, progress, "bench") as sink:
        yield from run_bench(options, lambda done, total, label: sink(progress_event("progress", done, total, label=label)))


def auto_tile(options: BenchOptions, *, on_event: EventSink | None = None, progress: bool = False,
              ) -> Iterator[AutoTileResult]:
    from airtool.engine.inference.bench import run_auto_tile

    with Progress(on_event, progress, "auto tile") as sink:
        yield from run_auto_tile(options, lambda done, total, label: sink(progress_event("progress", done, total, label=label)))


def cpu_description() -> str:
    """This CPU in one line: model, cores, vector extensions and torch's capability level."""
    from airtool.engine.hardware.cpuinfo import read_cpu, torch_capability

    return read_cpu().describe(torch_capability())


def cpu_peak() -> CpuPeak:
    """This CPU's peak GFLOP/s per precision and thread count, what ``% peak`` divides by."""
    from airtool.engine.hardware.cpu_peak import this_cpu

    return this_cpu()
