"""Tiling as pure functions: window grids, blend weights and stitching.

Overlapping windows are blended with a raised-cosine ramp over the overlap, so there are no
seams. The image stays on the host; only windows travel to the device. The blend is held for
one band of rows (a window's height) at a time, so its memory does not grow with the image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

Window = tuple[int, int, int, int]  # top, left, height, width


def starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of windows of length ``tile`` covering ``size`` with at least ``overlap``.

    The last window is shifted back to end at the border, so every window has full length
    (equal shapes batch together). ``tile >= size`` gives one window.
    """
    if tile >= size:
        return [0]
    stride = max(tile - overlap, 1)
    count = math.ceil((size - tile) / stride) + 1
    offsets = [min(i * stride, size - tile) for i in range(count)]
    return sorted(set(offsets))


def grid(height: int, width: int, tile: int, overlap: int) -> list[Window]:
    th, tw = min(tile, height), min(tile, width)
    return [(t, left, th, tw) for t in starts(height, tile, overlap) for left in starts(width, tile, overlap)]


def ramp(length: int, overlap: int, fade_start: bool, fade_end: bool) -> Tensor:
    """1-D weights: 1 in the middle, a raised-cosine rise/fall of ``overlap`` at faded ends."""
    w = torch.ones(length, dtype=torch.float32)
    n = min(overlap, length // 2)
    if n > 0:
        rise = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(n, dtype=torch.float32) + 0.5) / n)
        if fade_start:
            w[:n] = rise
        if fade_end:
            w[length - n :] = rise.flip(0)
    return w


def window_weight(win: Window, height: int, width: int, overlap: int) -> Tensor:
    """(h, w) blend weight; edges on the image border are not faded."""
    top, left, h, w = win
    wy = ramp(h, overlap, top > 0, top + h < height)
    wx = ramp(w, overlap, left > 0, left + w < width)
    return wy[:, None] * wx[None, :]


def batches(windows: list[Window], size: int) -> Iterator[list[Window]]:
    for i in range(0, len(windows), max(size, 1)):
        yield windows[i : i + size]


Band = tuple[int, Tensor]  # (first row, (C, rows, W) float32 blended rows)


class BandBlender:
    """Blends window outputs into a band of rows and hands rows back as soon as they are final.

    Windows must arrive in ``grid`` order (tops never decrease). When a window starts below the
    band's first row, every row above it is final: no later window reaches it. So the weighted sum
    and the weight sum cover only ``band_height`` rows (the window height), never the whole image,
    and each pixel sees the same additions in the same order as a whole-image blend: the result is
    bit-for-bit the same.
    """

    def __init__(self, height: int, width: int, channels: int, band_height: int, overlap: int, top: int = 0) -> None:
        self.height, self.width, self.overlap = height, width, overlap
        self.top = top  # image row of the band's first row (a resumed run starts lower)
        self.sum = torch.zeros((channels, band_height, width), dtype=torch.float32)
        self.norm = torch.zeros((band_height, width), dtype=torch.float32)

    def add(self, win: Window, result: Tensor) -> list[Band]:
        """Add one window's (C, h, w) output; returns the bands this made final (possibly none)."""
        t, left, h, w = win
        if t < self.top or h > self.sum.shape[1]:
            raise ValueError(f"window {win} is out of grid order or taller than the band")
        done = self._advance(t)
        weight = window_weight(win, self.height, self.width, self.overlap)
        rows = slice(t - self.top, t - self.top + h)
        self.sum[:, rows, left : left + w] += result.float() * weight
        self.norm[rows, left : left + w] += weight
        return done

    def finish(self) -> list[Band]:
        """The rows still in the band (the last ones of the image)."""
        return self._advance(self.height)

    def _advance(self, new_top: int) -> list[Band]:
        count = min(new_top, self.height) - self.top
        if count <= 0:
            return []
        band = (self.top, self.sum[:, :count].div(self.norm[:count]))
        keep = self.sum.shape[1] - count
        if keep > 0:  # shift the rows still open to the band's start; clear the rest
            self.sum[:, :keep] = self.sum[:, count:].clone()
            self.norm[:keep] = self.norm[count:].clone()
        self.sum[:, max(keep, 0) :].zero_()
        self.norm[max(keep, 0) :].zero_()
        self.top += count
        return [band]


@dataclass(frozen=True)
class Resume:
    """Where an interrupted tiled run continues: windows ``replay`` to ``start - 1`` come from
    ``saved(index)`` (their outputs, kept), the rest are computed from ``start`` on (a batch
    boundary of the first run). Rows above window ``replay`` are final already and kept elsewhere;
    the bands that cover them come out incomplete and are the caller's to drop."""

    replay: int
    start: int
    saved: Callable[[int], Tensor]


def tiled_bands(
    crop: Callable[[Window], Tensor],
    height: int,
    width: int,
    fn: Callable[..., Tensor],
    tile: int,
    overlap: int,
    batch_size: int = 1,
    with_windows: bool = False,
    progress: Callable[[int, int], None] | None = None,
    resume: Resume | None = None,
    on_window: Callable[[int, Tensor], None] | None = None,
) -> Iterator[Band]:
    """Apply ``fn`` ((B, C, h, w) -> same shape) window by window; yield the blended result as
    bands of rows, top to bottom, as they become final.

    ``crop(window)`` returns the (1, C, h, w) input of one window, so the whole image need never
    exist as one float tensor. ``fn`` receives host tensors and must return host float tensors;
    with ``with_windows`` it is called as ``fn(crops, windows)``, so it knows where each crop lies.
    ``tile <= 0`` (or a tile covering the image) runs ``fn`` once on the whole image.
    ``progress(done, total)`` is called with the number of windows finished after each batch
    (``(done, n)`` first: 0, or where ``resume`` starts). ``on_window(index, output)`` sees each
    computed window's (C, h, w) output before it is blended (to keep it for a resumed run).
    """
    report = progress or (lambda done, total: None)
    if tile <= 0 or (tile >= height and tile >= width):
        whole = (0, 0, height, width)
        report(0, 1)
        out = fn(crop(whole), [whole]) if with_windows else fn(crop(whole))
        report(1, 1)
        yield 0, out[0].float()
        return
    windows = grid(height, width, tile, overlap)
    first = resume.replay if resume else 0  # the first window blended
    done = resume.start if resume else 0
    if first >= len(windows):  # every row was kept
        report(len(windows), len(windows))
        return
    blender: BandBlender | None = None
    finished: list[Band] = []

    def blend(index: int, result: Tensor) -> None:
        nonlocal blender
        if blender is None:
            blender = BandBlender(height, width, result.shape[0], windows[first][2], overlap, top=windows[first][0])
        finished.extend(blender.add(windows[index], result))

    for index in range(first, done):
        blend(index, resume.saved(index))
    report(done, len(windows))
    yield from finished
    for group in batches(windows[done:], batch_size):
        crops = torch.cat([crop(win) for win in group])
        results = fn(crops, group) if with_windows else fn(crops)
        finished.clear()
        for index, result in enumerate(results, start=done):
            if on_window is not None:
                on_window(index, result)
            if index >= first:
                blend(index, result)
        done += len(group)
        report(done, len(windows))
        yield from finished
    yield from blender.finish()


def run_tiled(
    image: Tensor, fn: Callable[..., Tensor], tile: int, overlap: int, batch_size: int = 1,
    progress: Callable[[int, int], None] | None = None, with_windows: bool = False,
) -> Tensor:
    """``tiled_bands`` on a whole (1, C, H, W) image, the bands stitched into one (1, C, H, W) tensor."""
    _, _, height, width = image.shape

    def crop(win: Window) -> Tensor:
        t, left, h, w = win
        return image[..., t : t + h, left : left + w]

    bands = tiled_bands(crop, height, width, fn, tile, overlap, batch_size, with_windows, progress)
    return torch.cat([band for _, band in bands], dim=1)[None]
