"""Tiling as pure functions: window grids, blend weights and stitching.

Overlapping windows are blended with a raised-cosine ramp over the overlap, so there are no
seams. The image stays on the host; only windows travel to the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

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
    return [(t, l, th, tw) for t in starts(height, tile, overlap) for l in starts(width, tile, overlap)]


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


def run_tiled(
    image: Tensor, fn: Callable[..., Tensor], tile: int, overlap: int, batch_size: int = 1,
    progress: Callable[[int, int], None] | None = None, with_windows: bool = False,
) -> Tensor:
    """Apply ``fn`` ((B, C, h, w) -> same shape) to ``image`` (1, C, H, W) window by window.

    ``fn`` receives host tensors and must return host float tensors; the result is the
    weighted average of the overlapping window outputs. ``progress(done, total)`` is called
    with the number of windows finished after each batch (``(0, n)`` first). With
    ``with_windows`` ``fn`` is called as ``fn(crops, windows)``, so it knows where each crop lies.
    """
    _, c, height, width = image.shape
    if tile <= 0 or (tile >= height and tile >= width):
        if progress is not None:
            progress(0, 1)
        result = fn(image, [(0, 0, height, width)]) if with_windows else fn(image)
        if progress is not None:
            progress(1, 1)
        return result
    out = torch.zeros((1, c, height, width), dtype=torch.float32)
    norm = torch.zeros((height, width), dtype=torch.float32)
    windows = grid(height, width, tile, overlap)
    done = 0
    if progress is not None:
        progress(0, len(windows))
    for group in batches(windows, batch_size):
        crops = torch.cat([image[..., t : t + h, l : l + w] for t, l, h, w in group])
        results = fn(crops, group) if with_windows else fn(crops)
        for (t, l, h, w), result in zip(group, results):
            weight = window_weight((t, l, h, w), height, width, overlap)
            out[0, :, t : t + h, l : l + w] += result.float() * weight
            norm[t : t + h, l : l + w] += weight
        done += len(group)
        if progress is not None:
            progress(done, len(windows))
    return out.div_(norm)  # in place: one image-sized buffer fewer at peak
