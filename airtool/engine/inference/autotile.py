"""``--tile auto`` on the CPU: the tiling measured fastest on this CPU, for this model.

Why measured: on the CPU the time per pixel of a forward pass grows with the image (the
activations leave the caches), by how much depends on the CPU (caches, vector extensions,
cores, threads) and on the model, while tiles cost their overlap instead. So whether tiling
pays, and from which size, differs from CPU to CPU, and no table by CPU family could say where
the crossover lies on a CPU nobody measured (figures: docs/performance.md#--tile-auto).

The rule: the first time a model runs on this CPU (per torch version, thread count and
precision), time one forward pass at a ladder of square sizes (``CANDIDATES``, smallest first;
short passes twice, the faster counting), and stop before a pass above ``FALLBACK_TILE``
predicted to take over ``MAX_RUN_S``, once the time per pixel is ``WORSE_FACTOR`` times the
best seen, or once the image at hand is covered (larger sizes are measured when a larger image comes). The timings
are kept in ``$XDG_CACHE_HOME/airtool/tile-timings.json`` (``~/.cache`` by default;
``airtool bench --auto-tile`` measures again). For each image the whole image is predicted
from the per-pixel cost curve (interpolated in log-log), and each measured tile size from its
number of windows (overlap included) times its measured cost; the fastest wins, except that
the largest tile (or the whole image) within ``NEAR`` of it is taken, since neighbouring sizes
differ by less than the timing noise of a shared machine. Only what was
measured is chosen: tiles up to the largest measured size, the whole image up to
``WHOLE_IMAGE_MARGIN`` times its area and only when its activations (measured per pixel during
the same passes) fit ``MEMORY_FRACTION`` of the memory available now.

Quality comes first: only the whole image and tiles of at least the model's ``tile_floor`` (its
``ModelSpec.min_tile``, the smallest tile measured to match the whole image) are candidates; a
smaller tile only when memory holds nothing else, and then the largest that fits.

Timings taken under load are not kept, because every later run would follow them: each pass is
checked for other work taking the CPUs (``engine.cpu_share``) and run again while it is; a side
that stays disturbed ends the measuring, and those timings serve this run only. A cached entry is
dropped when it cannot be right (a pass over fewer pixels taking far longer than a larger one) or
when a real restore runs ``STALE_FACTOR`` times faster than it predicted.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

from airtool.engine.hardware import timing_cache

CANDIDATES = (128, 192, 256, 384, 512, 768, 1024, 1536)
MAX_RUN_S = 1.5  # no pass above FALLBACK_TILE predicted to take longer is run: measuring stays short
REPEAT_BELOW_S = 0.75  # passes shorter than this run twice and the faster counts (noise)
NEAR = 1.10  # a smaller tile must be predicted over 10 % faster than a larger one (or the whole image)
WORSE_FACTOR = 2.0
WHOLE_IMAGE_MARGIN = 1.25  # the whole image only up to this many times the largest measured pass
FALLBACK_TILE = 256  # the fixed CPU tile before measuring: always measured, so never beaten by noise alone
MEMORY_FRACTION = 0.5
RETRIES = 2  # a disturbed pass is run again up to this many times
IMPLAUSIBLE = 1.5  # a pass over fewer pixels taking this many times longer than a larger one was disturbed
STALE_FACTOR = 2.5  # a real restore this many times faster than predicted: the timings were taken under load
CACHE_NAME = "tile-timings.json"


@dataclass
class TileTimings:
    """Seconds of one forward pass per square side, measured on this CPU for one model."""

    seconds: dict[int, float] = field(default_factory=dict)
    bytes_per_pixel: float = 0.0  # peak activation memory of a whole-image pass, per pixel
    complete: bool = False  # larger sides were not measured because they are slower per pixel
    disturbed: bool = False  # measured while other work took the CPUs: for this run only, never cached

    def covers(self, side: int) -> bool:
        return self.complete or (bool(self.seconds) and max(self.seconds) >= side)

    def per_pixel(self, pixels: float) -> float:
        """Seconds per pixel for a pass over ``pixels`` pixels (log-log interpolation)."""
        points = sorted((s * s, t / (s * s)) for s, t in self.seconds.items())
        xs = [math.log(p) for p, _ in points]
        ys = [math.log(c) for _, c in points]
        x = math.log(max(pixels, 1.0))
        if len(points) == 1 or x <= xs[0]:
            return points[0][1] if x <= xs[0] else points[-1][1]
        if x >= xs[-1]:  # beyond the largest measured size: the cost per pixel keeps its last growth
            slope = max((ys[-1] - ys[-2]) / (xs[-1] - xs[-2]), 0.0)
            return math.exp(ys[-1] + slope * (x - xs[-1]))
        i = bisect.bisect_right(xs, x)
        f = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
        return math.exp(ys[i - 1] + f * (ys[i] - ys[i - 1]))

    def predict(self, height: int, width: int) -> float:
        return self.per_pixel(height * width) * height * width


def choose_tile(timings: TileTimings, height: int, width: int, overlap: int, multiple: int,
                memory_budget: float, floor: float = 0.0) -> int:
    """The predicted fastest tiling that costs no quality: the whole image (0), if it fits
    ``memory_budget`` bytes, or a candidate tile of at least ``floor`` pixels smaller than the
    image. When memory holds neither, the largest tile it holds (``memory_tile``)."""
    side = max(height, width)
    fits_whole = timings.bytes_per_pixel * height * width <= memory_budget
    if len(timings.seconds) < 2:  # nothing to compare (measuring was disturbed): the fixed tile, or a
        tile = max(FALLBACK_TILE, floor)  # larger one where quality needs it; the whole image up to twice
        if side <= 2 * tile:  # its side, where the overlap of two or more tiles costs more than it saves
            return 0 if fits_whole else memory_tile(timings, height, width, multiple, memory_budget)
        return int(tile) if _fits(timings, tile, memory_budget) else memory_tile(timings, height, width, multiple,
                                                                                 memory_budget)
    largest = max(timings.seconds)
    tiles = [t for t in _candidates(multiple) if floor <= t < side and 2 * overlap < t <= largest
             and _fits(timings, t, memory_budget)]
    options = [(predict_tiling(timings, height, width, t, overlap), t) for t in tiles]
    if fits_whole and (height * width <= WHOLE_IMAGE_MARGIN * largest * largest or not tiles):
        options.append((timings.predict(height, width), 0))
    if not options:
        return memory_tile(timings, height, width, multiple, memory_budget)
    best = min(seconds for seconds, _ in options)
    near = [tile for seconds, tile in options if seconds <= NEAR * best]
    return 0 if 0 in near else max(near)


def predict_tiling(timings: TileTimings, height: int, width: int, tile: int, overlap: int) -> float:
    """Seconds for the image in ``tile`` px windows (0: whole): windows times one window's pass."""
    from airtool.io.tiling import grid

    if tile <= 0 or (tile >= height and tile >= width):
        return timings.predict(height, width)
    return len(grid(height, width, tile, overlap)) * timings.predict(min(tile, height), min(tile, width))


def memory_tile(timings: TileTimings, height: int, width: int, multiple: int, memory_budget: float) -> int:
    """The largest tile whose pass fits ``memory_budget`` (0: the whole image does): the least
    context lost when memory forces tiles below what quality needs."""
    if timings.bytes_per_pixel * height * width <= memory_budget:
        return 0
    side = int(math.sqrt(memory_budget / timings.bytes_per_pixel)) // multiple * multiple
    return max(multiple, min(side, max(height, width)))


def looks_stale(timings: TileTimings, predicted_s: float, observed_s: float) -> bool:
    """A restore that ran ``STALE_FACTOR`` times faster than the timings predicted: they were
    taken under load (a real pass, with its warm-up and blending, is never faster than measured)."""
    return not timings.disturbed and observed_s > 0 and predicted_s > STALE_FACTOR * observed_s


def _candidates(multiple: int) -> list[int]:
    return sorted({c // multiple * multiple for c in CANDIDATES})


def _fits(timings: TileTimings, tile: float, memory_budget: float) -> bool:
    return timings.bytes_per_pixel * tile * tile <= memory_budget


class Pass(NamedTuple):
    """One timed forward pass."""

    seconds: float
    peak: float  # bytes of memory above the start
    disturbed: bool = False  # other work took the CPUs during it (``engine.cpu_share``)


Forward = Callable[[int], Pass]  # side -> one timed pass


def measure(forward: Forward, multiple: int, up_to: int, known: TileTimings | None = None,
            max_run_s: float = MAX_RUN_S) -> TileTimings:
    """Extend ``known`` with the timings of ``forward(side)`` up to the first candidate side
    covering ``up_to`` (see the module docstring for when it stops early)."""
    timings = TileTimings(dict((known or TileTimings()).seconds), (known or TileTimings()).bytes_per_pixel)
    sides = sorted({max(multiple, c // multiple * multiple) for c in CANDIDATES})
    warmed = False
    for side in sides:
        if side in timings.seconds:
            if side >= up_to:
                break
            continue
        if side > FALLBACK_TILE and _predicted(timings, side) > max_run_s:
            timings.complete = True  # too long to measure: larger sides stay unmeasured, never chosen
            break
        if not warmed:
            forward(side)  # first passes pay for kernel selection and allocation: not counted
            warmed = True
        runs = [_undisturbed(forward, side)]
        if runs[0].seconds < REPEAT_BELOW_S and not runs[0].disturbed:
            runs.append(_undisturbed(forward, side))
        quiet = [run for run in runs if not run.disturbed]
        timings.seconds[side] = min(run.seconds for run in quiet or runs)
        if side >= max(timings.seconds):  # the largest pass says most about larger images
            timings.bytes_per_pixel = max(run.peak for run in runs) / (side * side)
        if not quiet:  # the load did not go away: what was measured serves this run, and is not kept
            timings.disturbed = True
            break
        best = min(t / (s * s) for s, t in timings.seconds.items())
        if timings.seconds[side] / (side * side) > WORSE_FACTOR * best:
            timings.complete = True
            break
        if side >= up_to:
            break
    else:
        timings.complete = True
    return timings


def _undisturbed(forward: Forward, side: int) -> Pass:
    """One pass at ``side``, run again (up to ``RETRIES`` times) while other work disturbs it."""
    result = forward(side)
    for _ in range(RETRIES):
        if not result.disturbed:
            break
        result = forward(side)
    return result


def plausible(timings: TileTimings) -> bool:
    """Whether no pass took ``IMPLAUSIBLE`` times longer than a pass over more pixels: more pixels
    are never less work, so such a timing was taken under load."""
    longest = 0.0
    for side in sorted(timings.seconds):
        if longest > IMPLAUSIBLE * timings.seconds[side]:
            return False
        longest = max(longest, timings.seconds[side])
    return True


def _predicted(timings: TileTimings, side: int) -> float:
    """A pass at ``side``, extrapolating the per-pixel cost with its last growth."""
    return timings.per_pixel(side * side) * side * side


def available_memory() -> float:
    """Bytes of memory available now (MemAvailable on Linux), else 4 GiB."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 4.0 * 2**30


def load(key: str) -> TileTimings | None:
    """The cached timings of ``key``; None when absent, unreadable or implausible (``plausible``)."""
    entry = timing_cache.load_entry(key, CACHE_NAME)
    try:
        timings = TileTimings({int(k): float(v) for k, v in entry["seconds"].items()},
                              float(entry["bytes_per_pixel"]), bool(entry["complete"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return timings if plausible(timings) else None


def store(key: str, timings: TileTimings) -> None:
    """Cache ``timings`` for later runs, unless they were disturbed or implausible."""
    if not timings.disturbed and plausible(timings):
        timing_cache.store_entry(key, {k: v for k, v in asdict(timings).items() if k != "disturbed"}, CACHE_NAME)


def drop(key: str) -> None:
    """Forget the cached timings of ``key``: the next run measures again."""
    timing_cache.drop_entry(key, CACHE_NAME)
