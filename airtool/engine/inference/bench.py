"""Time a model's inference path: ms per image, images per second, peak memory and GFLOP/s.

``run_bench`` times exactly what ``restore`` runs per batch of tiles (``Restorer.forward_batch``:
host-to-device copy, memory layout, precision, the NaN check and the copy back), on random
weights with a fixed seed, because speed does not depend on the weights' values. Decoding,
encoding and tiling are left out; ``tools.bench_folder`` measures the whole pipeline.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from airtool.engine.hardware.peak_rss import PeakRSS
from airtool.errors import UsageError
from airtool.models import DEFAULT_MODEL
from airtool.models.spec import check_precision_name, check_threads


@dataclass(frozen=True)
class BenchOptions:
    models: tuple[str, ...] = (DEFAULT_MODEL,)
    sizes: tuple[int, ...] = (256,)
    precisions: tuple[str, ...] = ("auto",)
    device: str = "auto"
    batch_size: int = 1
    warmup: int = 1
    repeats: int = 3
    threads: int | None = None
    variant: str | None = None
    compile: bool = False
    seed: int = 0
    clip: str | None = None  # se-symunet's CLIP encoder folder (default: $AIRTOOL_CLIP)

    def __post_init__(self) -> None:
        if not self.models or not self.sizes or not self.precisions:
            raise UsageError("bench needs at least one model, size and precision")
        if any(size < 8 for size in self.sizes):
            raise UsageError("--size values must be at least 8 pixels")
        if self.batch_size < 1 or self.repeats < 1 or self.warmup < 0:
            raise UsageError("--batch and --repeats must be >= 1, --warmup >= 0")
        for precision in self.precisions:
            check_precision_name(precision)
        check_threads(self.threads)


@dataclass(frozen=True)
class BenchResult:
    model: str
    variant: str
    size: int
    batch: int
    precision: str
    device: str
    threads: int
    compiled: bool
    ms_per_image: float  # median over the timed repeats, divided by the batch size
    ms_per_image_min: float
    images_per_second: float
    peak_host_mb: float  # peak resident set size of the process while this configuration ran (model included)
    peak_device_mb: float | None  # peak memory allocated by torch on the GPU, None on the CPU
    macs_per_image: int  # multiply-accumulates of one forward pass, counted on the meta device
    gflops: float  # 2 * MACs / time: the effective rate, not the hardware's peak
    torch: str
    cpu: str = ""  # model, cores, vector extensions and torch's kernel set (figures differ several-fold by CPU)
    peak_gflops: float | None = None  # the CPU's peak for these threads and precision (engine/hardware/cpu_peak.py)
    fraction_of_peak: float | None = None  # gflops / peak_gflops; None on a GPU or an unknown CPU
    malloc: str = ""  # "tuned", or why glibc's own settings were kept (engine/hardware/allocator.py)

    def as_dict(self) -> dict:
        return asdict(self)


def count_macs(model, size: int) -> int:
    """Multiply-accumulates of one forward pass on a ``size`` x ``size`` image.

    ``FlopCounterMode`` counts convolutions and matrix products, attention products included;
    norms, softmax, FFTs and element-wise ops are not counted. The count runs on the meta
    device (shapes only, free at any size); a model with an op that has no meta kernel
    (DaAIR's ``bincount``) is counted by a real forward pass on the CPU instead.
    """
    import copy

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    for device in ("meta", "cpu"):
        counter = FlopCounterMode(display=False)
        try:
            with counter, torch.no_grad():
                copy.deepcopy(model).to(device)(torch.zeros(1, 3, size, size, device=device))
        except NotImplementedError:
            continue
        return counter.get_total_flops() // 2
    raise AssertionError("unreachable: the CPU supports every op")


Progress = Callable[[int, int, str], None]  # (steps done, steps in all, what runs now)


class _Steps:
    """Counts the bench's steps (per configuration: the MAC count, each warm-up and timed run)."""

    def __init__(self, options: BenchOptions, on_progress: Progress | None) -> None:
        configs = len(options.models) * len(options.precisions) * len(options.sizes)
        self.total = configs * (1 + options.warmup + options.repeats)
        self.done = 0
        self.on_progress = on_progress or (lambda done, total, label: None)

    def starting(self, label: str) -> None:
        self.on_progress(self.done, self.total, label)

    def finished(self, label: str) -> None:
        self.done += 1
        self.on_progress(self.done, self.total, label)


def run_bench(options: BenchOptions, on_progress: Progress | None = None) -> Iterator[BenchResult]:
    """Yield one result per (model, precision, size), in that nesting order; ``on_progress``
    hears of every step as it starts and ends, so a long bench is never silent."""
    import torch

    from airtool.engine.hardware.cpuinfo import read_cpu, torch_capability

    if options.threads:
        torch.set_num_threads(options.threads)
    cpu = read_cpu().describe(torch_capability())
    steps = _Steps(options, on_progress)
    for name in options.models:
        yield from _bench_model(name, options, cpu, steps)


def _bench_model(name: str, options: BenchOptions, cpu: str, steps: _Steps) -> Iterator[BenchResult]:

    from airtool.engine.inference.load import load_restorer
    from airtool.models import get_spec

    spec = get_spec(name)
    variant = options.variant or spec.default_variant
    steps.starting(f"{name}: building the model")
    # Random weights (speed does not depend on them), but a CLIP model's real encoder: its cost is the model's.
    built = load_restorer(name, variant=variant, device=options.device, precision=options.precisions[0],
                          clip=options.clip, compile=options.compile, random_seed=options.seed)
    for precision in options.precisions:
        restorer = built.with_precision(precision)
        for size in options.sizes:
            label = f"{name} {size}px {restorer.runtime.precision}"
            steps.starting(f"{label}: counting MACs")
            macs = count_macs(restorer.model, size)
            steps.finished(f"{label}: counted MACs")
            ran = lambda what, label=label: steps.finished(f"{label}: {what}")  # noqa: E731
            yield _time_one(restorer, name, variant, size, macs, options, cpu, ran)


def _time_one(restorer, name: str, variant: str, size: int, macs: int, options: BenchOptions, cpu: str = "",
              ran: Callable[[str], None] = lambda what: None) -> BenchResult:
    import torch

    from airtool.engine.hardware.allocator import malloc_state

    device = restorer.runtime.device
    generator = torch.Generator().manual_seed(options.seed)
    batch = torch.rand(options.batch_size, 3, size, size, generator=generator)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    with PeakRSS() as rss, torch.inference_mode():
        for i in range(options.warmup):
            restorer.forward_batch(batch)
            ran(f"warm-up {i + 1}/{options.warmup}")
        for i in range(options.repeats):
            start = time.perf_counter()
            restorer.forward_batch(batch)  # returns a host tensor, so the GPU has finished
            times.append((time.perf_counter() - start) * 1000 / options.batch_size)
            ran(f"run {i + 1}/{options.repeats} {times[-1]:,.0f} ms")
    ms = statistics.median(times)
    return BenchResult(
        model=name, variant=variant, size=size, batch=options.batch_size, precision=restorer.runtime.precision,
        device=str(device), threads=torch.get_num_threads(), compiled=options.compile,
        ms_per_image=round(ms, 2), ms_per_image_min=round(min(times), 2), images_per_second=round(1000 / ms, 3),
        peak_host_mb=round(rss.peak / 2**20, 1),
        peak_device_mb=round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None,
        macs_per_image=macs, gflops=round(2 * macs / ms / 1e6, 1), torch=torch.__version__, cpu=cpu,
        malloc=malloc_state(),
        **_cpu_peak(device, restorer.runtime.precision, torch.get_num_threads(), 2 * macs / ms / 1e6),
    )


# Image sizes whose auto tile ``airtool bench --auto-tile`` shows (a screen grab to a 24 MP photo).
AUTO_TILE_IMAGES = ((500, 500), (1000, 1500), (2000, 3000), (4000, 6000))
BENCH_AUTO_TILE_UP_TO = 1024


@dataclass(frozen=True)
class AutoTileResult:
    model: str
    precision: str
    threads: int
    cpu: str
    ms: dict[int, float]  # one untiled pass per square side, as measured for the auto tile
    bytes_per_pixel: float
    chosen: dict[str, int]  # "HxW" -> the tile --tile auto uses (0 = whole image)

    def as_dict(self) -> dict:
        return asdict(self)


def run_auto_tile(options: BenchOptions, on_progress: Progress | None = None) -> Iterator[AutoTileResult]:
    """Measure (again) the timings behind ``--tile auto`` on this CPU for each model and
    precision, store them where ``restore`` finds them, and say which tile each image size gets."""
    import torch

    from airtool.engine.hardware.cpuinfo import read_cpu, torch_capability
    from airtool.engine.inference import autotile
    from airtool.engine.inference.infer import TileOptions
    from airtool.engine.inference.load import load_restorer

    if options.threads:
        torch.set_num_threads(options.threads)
    cpu = read_cpu().describe(torch_capability())
    configs = [(m, p) for m in options.models for p in options.precisions]
    for i, (name, precision) in enumerate(configs):
        if on_progress is not None:
            on_progress(i, len(configs), f"{name} {precision}: timing passes up to {BENCH_AUTO_TILE_UP_TO} px")
        restorer = load_restorer(name, variant=options.variant, device=options.device, precision=precision,
                                 tiles=TileOptions("auto"), random_seed=options.seed)
        # Asked for: no time limit per pass, up to 1024 px (seconds to tens of seconds a pass on a
        # 2-core CPU: docs/performance.md#per-model); it still stops once larger passes are slower per pixel.
        timings = restorer.measure_tiles(BENCH_AUTO_TILE_UP_TO, max_run_s=float("inf"))
        autotile.store(restorer.timing_key(), timings)
        restorer.tile_timings = timings
        chosen = {f"{h}x{w}": restorer.tile_size(h, w) for h, w in AUTO_TILE_IMAGES}
        yield AutoTileResult(name, restorer.runtime.precision, torch.get_num_threads(), cpu,
                             {s: round(t * 1000, 1) for s, t in sorted(timings.seconds.items())},
                             round(timings.bytes_per_pixel, 1), chosen)
    if on_progress is not None:
        on_progress(len(configs), len(configs), "done")


def _cpu_peak(device, precision: str, threads: int, gflops: float) -> dict:
    if device.type != "cpu":
        return {}
    from airtool.engine.hardware.cpu_peak import this_cpu

    peak = this_cpu().gflops(precision, threads)
    return {"peak_gflops": round(peak, 1), "fraction_of_peak": round(gflops / peak, 3)} if peak else {}
