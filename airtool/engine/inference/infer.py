"""Run a restoration network on whole pictures: tiling, precision, NaN fallback, OOM back-off."""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from airtool.engine.hardware import cpu_share
from airtool.engine.hardware import precision as hardware_precision
from airtool.engine.hardware.device import Runtime
from airtool.engine.hardware.peak_rss import PeakRSS
from airtool.engine.inference import autotile
from airtool.engine.inference.degradation import DegradationProbe
from airtool.errors import DeviceError
from airtool.io import tiling
from airtool.io.tile_resume import TileStore
from airtool.models.blocks import pad_to_multiple
from airtool.models.spec import ModelSpec
from airtool.precision import autocast

# MPS (not measured yet) keeps the fixed tile the CPU used before it measured its own (autotile).
MPS_AUTO_TILE = 256
MIN_TILE = 64
Progress = Callable[[int, int], None]  # (tiles done, tiles in the image)


@dataclass(frozen=True)
class TileOptions:
    tile: int | str = "auto"  # "auto", 0 (whole image) or a size in pixels
    overlap: int = 32
    batch_size: int = 1


class Restorer:
    """Callable: (H, W, C) pixels -> restored (H, W, C) pixels of the same dtype.

    float32 pixels are in [0, 1]; uint8 and uint16 pixels are levels of 255 and 65535, converted
    to float window by window and back band by band (exactly as ``read_image`` and
    ``encode_image`` convert them), so no float copy of the whole picture is made when it is tiled.
    Grey pictures are replicated to RGB for the network and averaged back to one channel.
    """

    def __init__(
        self, model: nn.Module, spec: ModelSpec, runtime: Runtime, tiles: TileOptions = TileOptions(), compile: bool = False
    ) -> None:
        check_size_multiple(model, spec)
        self.model = model.to(runtime.device).eval()
        if runtime.device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.network = compile_model(self.model, runtime) if compile else self.model
        self.spec = spec
        self.runtime = runtime
        self.tiles = tiles
        self.fp32_retries = 0
        self.last_tile = 0
        self.tile_timings: autotile.TileTimings | None = None  # CPU auto tile: measured once, then cached
        # Hooks do not survive torch.compile's tracing as plain Python, so no report when compiled.
        self.probe = None if compile else DegradationProbe(self.model)

    def with_precision(self, precision: str, measured: bool = True) -> Restorer:
        """The same network and tiling at ``precision`` on the same device, as
        ``resolve_precision`` decides it (``auto`` on a CPU: measured here unless ``measured=False``)."""
        device = self.runtime.device
        timing = cpu_timing(self.model, self.spec, device) if measured else None
        chosen = hardware_precision.resolve_precision(self.spec.precision, device, precision, measure=timing)
        if chosen == self.runtime.precision:
            return self
        return Restorer(self.model, self.spec, Runtime(device, chosen), self.tiles, compile=self.network is not self.model)

    def close(self) -> None:
        """Detach this wrapper's hooks from the model (another wrapper of the same model lives on)."""
        if self.probe is not None:
            self.probe.close()

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self.restore(pixels)[0]

    @torch.inference_mode()
    def restore(self, pixels: np.ndarray, on_tile: Progress | None = None,
                resume: TileStore | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """The restored pixels (same dtype) and what happened: tile, precision, device, notes, and
        the model's degradation report where it gives one. ``on_tile(done, total)`` follows the
        tiles (windows), counted as ``tiling.tiled_bands`` finishes them. With ``resume``, a tiled
        run keeps its finished tiles there and continues from those an interrupted run kept."""
        levels = _levels(pixels.dtype)
        height, width, _ = pixels.shape
        retries = self.fp32_retries
        tile = self._kept_tile(pixels, resume) or self.tile_size(height, width)
        first_tile = tile
        context = self.image_context(_window_tensor(pixels, (0, 0, height, width), levels)) if self._has_context() else None
        out = np.empty(pixels.shape, np.float32 if levels is None else pixels.dtype)
        while True:
            try:
                self.last_tile = tile
                if self.probe is not None:
                    self.probe.reset()  # an out-of-memory retry starts the report again
                start = cpu_share.sample()
                kept = self._fill(out, pixels, levels, tile, context, on_tile, resume)
                break
            except (torch.OutOfMemoryError, MemoryError) as err:
                tile = self._smaller_tile(tile, (height, width), err)
        if not kept and tile == first_tile:
            self._recheck_timings(height, width, start, cpu_share.sample())
        info: dict[str, Any] = {"tile": self.last_tile, "precision": self.runtime.precision,
                                "device": str(self.runtime.device)}
        notes = self._tile_notes(forced=tile != first_tile or self.tiles.tile == "auto")
        if kept:
            notes.append(f"resumed: {kept} of {len(tiling.grid(height, width, tile, self.tiles.overlap))} tiles "
                         "kept from an interrupted run")
            info["resumed_tiles"] = kept
        if notes:
            info["notes"] = notes
        if self.fp32_retries > retries:
            info["fp32_retries"] = self.fp32_retries - retries
        report = self.probe.report() if self.probe is not None else None
        if report is not None:
            info["degradation"] = report
        return out, info

    def _fill(self, out: np.ndarray, pixels: np.ndarray, levels: float | None, tile: int, context: Tensor | None,
              on_tile: Progress | None, store: TileStore | None) -> int:
        """Restore ``pixels`` into ``out`` band by band; with ``store``, a tiled run keeps its
        windows and final rows there. Returns how many windows an interrupted run had kept."""
        height, width, channels = pixels.shape
        resume, on_window = None, None
        if store is not None and tile > 0:
            windows = tiling.grid(height, width, tile, self.tiles.overlap)
            resume = store.begin(self._resume_key(pixels, tile), windows, out, self.tiles.batch_size)
            on_window = store.save_window
        kept_rows = store.rows if resume is not None else 0
        for top, band in self._bands(pixels, levels, tile, context, on_tile, resume, on_window):
            skip = max(kept_rows - top, 0)  # rows an interrupted run finished: kept, not blended again
            if skip >= band.shape[1]:
                continue
            rows = slice(top + skip, top + band.shape[1])
            out[rows] = _band_pixels(band[:, skip:], channels, levels)
            if on_window is not None:
                store.add_rows(rows.start, out[rows])
        return resume.start if resume is not None else 0

    def _resume_key(self, pixels: np.ndarray, tile: int | None) -> dict[str, Any]:
        """What kept tiles depend on, beside the caller's model and weights (``TileStore.about``)."""
        from airtool._version import __version__

        return {"input": hashlib.sha256(np.ascontiguousarray(pixels)).hexdigest(), "shape": list(pixels.shape),
                "dtype": str(pixels.dtype), "model": self.spec.name,
                "parameters": sum(p.numel() for p in self.model.parameters()), "precision": self.runtime.precision,
                "device": str(self.runtime.device), "tile": tile, "overlap": self.tiles.overlap,
                "batch_size": self.tiles.batch_size, "threads": torch.get_num_threads(), "torch": torch.__version__,
                "airtool": __version__}

    def _kept_tile(self, pixels: np.ndarray, store: TileStore | None) -> int:
        """Under ``--tile auto``, the tile of the run ``store`` kept for this picture (0: none), so
        a resumed run continues it even if the choice would differ now (memory changes)."""
        if store is None or self.tiles.tile != "auto" or not store.folder.is_dir():
            return 0
        return store.kept_tile(self._resume_key(pixels, None))

    def _recheck_timings(self, height: int, width: int, start: cpu_share.Sample, end: cpu_share.Sample) -> None:
        """Drop cached CPU timings that a quiet restore just beat by far (``autotile.looks_stale``)."""
        timings = self.tile_timings
        if timings is None or self.tiles.tile != "auto" or cpu_share.disturbed(start, end, torch.get_num_threads()):
            return
        predicted = autotile.predict_tiling(timings, height, width, self.last_tile, self.tiles.overlap)
        if autotile.looks_stale(timings, predicted, end.wall - start.wall):
            autotile.drop(self.timing_key())
            self.tile_timings = None  # the next picture measures again

    def _tile_notes(self, forced: bool) -> list[str]:
        """A note when the tile is below the smallest that matches the whole image (``ModelSpec.min_tile``)."""
        tile, floor, name = self.last_tile, self.spec.tile_floor(), self.spec.name
        if tile <= 0 or tile >= floor or not any(True for _ in self.model.parameters()):
            return []
        if not self.spec.min_tile:
            need = "was measured whole only"
        elif math.isinf(floor):
            need = "matches its whole-image result only untiled"
        else:
            need = f"needs tiles of at least {int(floor)} px to match its whole-image result"
        if forced:
            return [f"{tile} px tiles: memory held no larger; {name} {need}, so expect a lower quality"]
        return [f"--tile {tile}: {name} {need}"] if self.spec.min_tile else []

    def _bands(
        self, pixels: np.ndarray, levels: float | None, tile: int, context: Tensor | None, on_tile: Progress | None,
        resume: tiling.Resume | None = None, on_window: Callable[[int, Tensor], None] | None = None,
    ) -> Iterator[tiling.Band]:
        height, width = pixels.shape[:2]

        def crop(win: tiling.Window) -> Tensor:
            return _window_tensor(pixels, win, levels)

        overlap, batch = self.tiles.overlap, self.tiles.batch_size
        kept = {"resume": resume, "on_window": on_window, "progress": on_tile}
        if context is None:
            return tiling.tiled_bands(crop, height, width, self.forward_batch, tile, overlap, batch, **kept)
        run = functools.partial(self._forward_tiles, context=context)
        return tiling.tiled_bands(crop, height, width, run, tile, overlap, batch, with_windows=True, **kept)

    def tile_size(self, height: int, width: int) -> int:
        tile = self.tiles.tile
        if tile == "auto":
            tile = self._auto_tile(height, width)
        tile = int(tile)
        if tile <= 0 or (tile >= height and tile >= width):
            return 0
        multiple = self.spec.size_multiple
        return max(multiple, tile // multiple * multiple)

    def _auto_tile(self, height: int, width: int) -> int:
        if self.runtime.device.type == "cpu":
            return self._cpu_auto_tile(height, width)
        floor = self.spec.tile_floor()
        if self.runtime.device.type != "cuda":  # the fixed tile, or a larger one where quality needs it
            return 0 if floor >= max(height, width) else int(max(MPS_AUTO_TILE, floor))
        free, _ = torch.cuda.mem_get_info(self.runtime.device)
        # Assumed budget, not yet measured on a GPU: ~12 kB of activations per pixel in fp32 for the
        # paper-width models, half under bf16/fp16; use 60 % of free memory, as chaiNNer does. An
        # underestimate is caught by the out-of-memory back-off below.
        per_pixel = 12_000 if self.runtime.precision == "fp32" else 6_000
        side = int((0.6 * free / per_pixel / max(self.tiles.batch_size, 1)) ** 0.5)
        return int(max(MIN_TILE, min(side, max(2048, floor))))  # past 2048 px only where quality needs it

    def _cpu_auto_tile(self, height: int, width: int) -> int:
        """The fastest tiling that costs no quality, as measured on this CPU (``engine.autotile``)."""
        if max(height, width) <= autotile.CANDIDATES[0] or not any(True for _ in self.model.parameters()):
            return 0  # nothing to tile, or a model without parameters costs nothing per pixel
        timings = self._timings_covering(max(height, width))
        budget = autotile.MEMORY_FRACTION * autotile.available_memory()
        multiple = self.spec.size_multiple
        floor = self.spec.tile_floor()
        return autotile.choose_tile(timings, height, width, self.tiles.overlap, multiple, budget, floor)

    def _timings_covering(self, side: int) -> autotile.TileTimings:
        """This model's timings on this CPU up to ``side``: from the cache, else measured (and
        cached unless the measuring was disturbed). Disturbed timings serve the rest of this run."""
        timings = self.tile_timings
        if timings is not None and (timings.covers(side) or timings.disturbed):
            return timings
        key = self.timing_key()
        known = autotile.load(key)
        if known is not None and known.covers(side):
            self.tile_timings = known
        else:
            self.tile_timings = self.measure_tiles(side, known)
            autotile.store(key, self.tile_timings)
        return self.tile_timings

    def timing_key(self) -> str:
        """What the CPU timings depend on: the CPU, torch, threads, the model and its size, precision."""
        return f"{model_key(self.model, self.spec)} | {self.runtime.precision}"

    @torch.inference_mode()
    def measure_tiles(self, up_to: int, known: autotile.TileTimings | None = None,
                      max_run_s: float = autotile.MAX_RUN_S) -> autotile.TileTimings:
        """Time whole-tile passes on random pixels (speed does not depend on them)."""
        network, self.network = self.network, self.model  # eager: compiling every size would take minutes
        try:
            return autotile.measure(self.time_pass, self.spec.size_multiple, up_to, known, max_run_s)
        finally:
            self.network = network

    @torch.inference_mode()
    def time_pass(self, side: int) -> autotile.Pass:
        """One timed forward pass over ``side`` x ``side`` random pixels: seconds, the memory it
        took, and whether other work took the CPUs meanwhile (``engine.cpu_share``)."""
        batch = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(side))
        with PeakRSS() as rss:
            start_rss, start = rss.peak, cpu_share.sample()
            self.forward_batch(batch)
            end = cpu_share.sample()
        disturbed = self.runtime.device.type == "cpu" and cpu_share.disturbed(start, end, torch.get_num_threads())
        return autotile.Pass(end.wall - start.wall, float(max(rss.peak - start_rss, 0)), disturbed)

    def _smaller_tile(self, tile: int, shape: tuple[int, int], err: BaseException) -> int:
        if self.runtime.device.type == "cuda":
            torch.cuda.empty_cache()
        current = tile or max(shape)
        smaller = current // 2 // self.spec.size_multiple * self.spec.size_multiple
        if smaller < max(MIN_TILE, self.spec.size_multiple):
            raise DeviceError(
                f"out of memory even with {current}px tiles; try --device cpu, a smaller --batch-size, "
                "or PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"
            ) from err
        return smaller

    def _has_context(self) -> bool:
        return getattr(self.model, "image_context", None) is not None

    def image_context(self, image: Tensor) -> Tensor | None:
        """The model's per-picture context (SE-SymUNet: CLIP on the whole picture), computed once and
        passed to every tile; None for models without one (nothing is computed or copied for them)."""
        hook = getattr(self.model, "image_context", None)
        if hook is None:
            return None
        inp = image.to(self.runtime.device)
        context = self._infer(inp, self.runtime.precision, hook)
        if self.runtime.precision != "fp32" and not torch.isfinite(context).all():
            self.fp32_retries += 1
            context = self._infer(inp, "fp32", hook)
        return context

    def _forward_tiles(self, batch: Tensor, windows: list[tiling.Window], context: Tensor) -> Tensor:
        return self.forward_batch(batch, context, origins=[(top, left) for top, left, _, _ in windows])

    def forward_batch(
        self, batch: Tensor, context: Tensor | None = None, origins: list[tuple[int, int]] | None = None
    ) -> Tensor:
        """Host (B, 3, h, w) batch -> host float32 batch, retried in fp32 when reduced precision gives NaN/Inf.

        ``context`` (from ``image_context``) is the whole picture's, shared by every tile of the batch;
        ``origins`` are the tiles' (top, left) pixels in the picture.
        """
        device = self.runtime.device
        if device.type == "cuda":
            batch = batch.pin_memory()  # page-locked, so the copy below is a real asynchronous DMA
        inp = batch.to(device, non_blocking=True)
        if device.type == "cpu":
            inp = inp.contiguous(memory_format=torch.channels_last)
        height, width = inp.shape[-2:]
        inp = pad_to_multiple(inp, self.spec.size_multiple)  # here once, for every model (as spandrel does)
        run = self.network if context is None else functools.partial(self.network, context=context, origins=origins)
        out = self._infer(inp, self.runtime.precision, run)
        if self.runtime.precision != "fp32" and not torch.isfinite(out).all():
            self.fp32_retries += 1
            out = self._infer(inp, "fp32", run)
        return out[..., :height, :width].float().cpu()

    def _infer(self, inp: Tensor, precision: str, run: Callable[[Tensor], Tensor]) -> Tensor:
        with autocast(self.runtime.device.type, precision):
            return run(inp).float()


def model_key(model: nn.Module, spec: ModelSpec) -> str:
    """What a CPU timing of ``model`` depends on besides its precision: the CPU, torch, threads,
    the model and its size."""
    from airtool.engine.hardware.cpuinfo import read_cpu, torch_capability

    params = sum(p.numel() for p in model.parameters())
    return (f"{read_cpu().describe(torch_capability())} | torch {torch.__version__}"
            f" | {torch.get_num_threads()} threads | {spec.name} ({params:,} parameters)")


def cpu_timing(model: nn.Module, spec: ModelSpec, device: torch.device) -> hardware_precision.CpuTiming:
    """How ``resolve_precision`` times ``model`` on this CPU when ``--precision auto`` must measure."""
    return hardware_precision.CpuTiming(key=functools.partial(model_key, model, spec),
                                        seconds=functools.partial(time_precision, model, spec, device))


def time_precision(model: nn.Module, spec: ModelSpec, device: torch.device,
                   precision: str) -> hardware_precision.PassTime:
    """One warm square pass of ``hardware_precision.PROBE_SIDE`` px at ``precision``, timed (eager:
    compiling would cost minutes), and whether other work took the CPUs meanwhile."""
    probe = Restorer(model, spec, Runtime(device, precision))
    side = hardware_precision.PROBE_SIDE
    batch = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    try:
        with torch.inference_mode():
            probe.forward_batch(batch)  # warm-up: oneDNN builds its kernels on the first call
            start = cpu_share.sample()
            probe.forward_batch(batch)
            end = cpu_share.sample()
    finally:
        probe.close()
    disturbed = cpu_share.disturbed(start, end, torch.get_num_threads())
    return hardware_precision.PassTime(end.wall - start.wall, disturbed)


def check_size_multiple(model: nn.Module, spec: ModelSpec) -> None:
    """The wrapper pads to ``spec.size_multiple``; a module that needs another multiple (its own
    ``size_multiple``, which its forward pads to when called directly) must divide it."""
    own = getattr(model, "size_multiple", None)
    if own is not None and spec.size_multiple % int(own) != 0:
        raise ValueError(f"{spec.name}: the module needs sizes in multiples of {own}, "
                         f"but its spec pads to multiples of {spec.size_multiple}")


def _levels(dtype: np.dtype) -> float | None:
    """The value of white for integer pixels (255, 65535); None for float pixels in [0, 1]."""
    if np.issubdtype(dtype, np.floating):
        return None
    if dtype not in (np.uint8, np.uint16):
        raise TypeError(f"pixels must be float, uint8 or uint16, not {dtype}")
    return float(np.iinfo(dtype).max)


def _window_tensor(pixels: np.ndarray, win: tiling.Window, levels: float | None) -> Tensor:
    """One window of (H, W, C) pixels as a (1, 3, h, w) float32 tensor in [0, 1]."""
    top, left, h, w = win
    part = pixels[top : top + h, left : left + w]
    part = part.astype(np.float32) / levels if levels else np.clip(part, 0.0, 1.0, dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(part)).permute(2, 0, 1)[None]
    return x.expand(1, 3, h, w) if x.shape[1] == 1 else x


def _band_pixels(band: Tensor, channels: int, levels: float | None) -> np.ndarray:
    """(3, rows, W) float network output -> (rows, W, channels) pixels in the input's terms."""
    if channels == 1:  # in float64, so three equal channels average to exactly that value
        band = band.double().mean(dim=0, keepdim=True).float()
    rows = band.permute(1, 2, 0).clamp_(0, 1).numpy()
    if levels is None:
        return rows
    return np.rint(rows.astype(np.float64) * levels)  # as encode_image rounds; assigned into uint


def compile_model(model: nn.Module, runtime: Runtime) -> nn.Module:
    """``torch.compile`` for fixed tile shapes (opt-in: ``--compile``).

    On CUDA the "reduce-overhead" mode replays CUDA graphs; tiles all share one shape (the last
    window is shifted back, see ``tiling.starts``), so each tile size compiles once. A missing
    compiler toolchain is reported as a device error on first use, never hidden.
    """
    mode = "reduce-overhead" if runtime.device.type == "cuda" else None
    return _ReportCompileErrors(torch.compile(model, mode=mode, dynamic=False))


class _ReportCompileErrors(nn.Module):
    def __init__(self, compiled: nn.Module) -> None:
        super().__init__()
        self.compiled = compiled

    def forward(self, x: Tensor, **kwargs: Tensor) -> Tensor:
        try:
            return self.compiled(x, **kwargs)
        except Exception as err:  # inductor raises many types (BackendCompilerFailed, CppCompileError...)
            if "torch._dynamo" not in type(err).__module__ and "inductor" not in type(err).__module__:
                raise
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise DeviceError(f"--compile failed ({type(err).__name__}: {first}); run without --compile") from err
