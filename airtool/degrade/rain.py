"""Synthetic rain streaks by the "Photoshop" recipe of synthetic rain datasets (Rain1400-style).

Per layer: uniform noise thresholded to keep a ``density`` fraction of pixels (streak seeds,
brightness proportional to how far above the threshold), motion-blurred by an anti-aliased
line kernel (``length``, ``angle``, ``width``), scaled by ``intensity``. Layers after the first
are thinner, shorter and dimmer (farther rain) and tilted by up to ``spread`` degrees.
The summed streak layer S is blended additively (x + S) or with screen (1 - (1-x)(1-S)).
``light`` resembles Rain100L (one thin, sparse direction), ``heavy`` Rain100H.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from airtool.degrade.base import (
    Choice,
    IntRange,
    KeySpec,
    Uniform,
    as_batch,
    gaussian_blur,
    line_kernel,
    resolve_rng,
    sample_params,
)

NAME = "rain"

# Per-layer offsets of the angle, in units of ``spread``: the first layer keeps ``angle``.
_SPREAD_OFFSETS = (0.0, -1.0, 1.0, -0.5, 0.5)
_TAPER = 0.6  # streak ends fade to 40 % of the centre brightness


@dataclass(frozen=True)
class Params:
    """Rain parameters.

    density: fraction of pixels seeding a streak, per layer.
    length: streak length in pixels.
    angle: tilt from vertical in degrees; positive leans like "/" (top end to the right).
    width: streak thickness in pixels.
    intensity: brightness added by the brightest streak (0-1).
    layers: number of streak layers (1 = one direction, like Rain100L).
    spread: angle difference of the extra layers, degrees.
    blend: "add" or "screen".
    seed: seeds the streak noise when ``apply`` gets no generator.
    """

    density: float = 0.005
    length: float = 25.0
    angle: float = 0.0
    width: float = 1.2
    intensity: float = 0.45
    layers: int = 1
    spread: float = 0.0
    blend: str = "add"
    seed: int = 0


KEYS: dict[str, KeySpec] = {
    "density": KeySpec("float", 0.0, 0.2, help="fraction of pixels seeding a streak"),
    "length": KeySpec("float", 1.0, 200.0, help="streak length, px"),
    "angle": KeySpec("float", -89.0, 89.0, help="tilt from vertical, degrees"),
    "width": KeySpec("float", 0.3, 8.0, help="streak width, px"),
    "intensity": KeySpec("float", 0.0, 1.0, help="streak brightness"),
    "layers": KeySpec("int", 1, len(_SPREAD_OFFSETS), help="number of streak layers"),
    "spread": KeySpec("float", 0.0, 60.0, help="angle spread between layers, degrees"),
    "blend": KeySpec("choice", choices=("add", "screen"), help="blend mode"),
    "seed": KeySpec("int", 0, 2**32 - 1, help="streak seed"),
}

PRESETS: dict[str, dict[str, Any]] = {
    # Rain100L-like: one thin, sparse direction near vertical. On Rain100L/target/001 (20
    # seeds) the pixels brightened by > 0.05 cover 8-20 % (median 14 %) with mean brightening
    # 0.11-0.17; the 50 real Rain100L pairs here: 4-31 % (median 14 %), 0.09-0.21.
    "light": {
        "density": Uniform(0.0035, 0.006),
        "length": Uniform(12.0, 28.0),
        "angle": Uniform(-20.0, 20.0),
        "width": Uniform(1.0, 1.5),
        "intensity": Uniform(0.25, 0.42),
        "layers": IntRange(1, 1),
        "spread": Uniform(0.0, 0.0),
        "blend": Choice(("add",)),
    },
    "medium": {
        "density": Uniform(0.004, 0.007),
        "length": Uniform(25.0, 40.0),
        "angle": Uniform(-25.0, 25.0),
        "width": Uniform(1.2, 1.8),
        "intensity": Uniform(0.35, 0.55),
        "layers": IntRange(1, 2),
        "spread": Uniform(5.0, 15.0),
        "blend": Choice(("add",)),
    },
    # Rain100H-like: dense, long, several layers in different directions.
    "heavy": {
        "density": Uniform(0.0025, 0.004),
        "length": Uniform(35.0, 60.0),
        "angle": Uniform(-30.0, 30.0),
        "width": Uniform(1.5, 2.5),
        "intensity": Uniform(0.4, 0.65),
        "layers": IntRange(3, 4),
        "spread": Uniform(10.0, 25.0),
        "blend": Choice(("add", "screen")),
    },
}


def sample(rng: np.random.Generator, preset: str | None = None, **fixed: Any) -> Params:
    """Random rain params from ``preset`` (None: any preset); ``fixed`` keys override."""
    return sample_params(sys.modules[__name__], rng, preset, fixed)


def apply(img: Tensor, params: Params, rng: np.random.Generator | None = None) -> Tensor:
    """Rainy copy of ``img`` ((C,H,W) or (B,C,H,W) float in [0,1]); same shape/dtype, in [0,1].

    Streak noise comes from ``rng`` if given, else from ``params.seed``.
    """
    x, restore = as_batch(img)
    streaks = streak_layer(x.shape[0], x.shape[-2], x.shape[-1], params, resolve_rng(rng, params.seed))
    s = streaks.to(x.device, x.dtype)
    out = x + s if params.blend == "add" else 1.0 - (1.0 - x) * (1.0 - s)
    return restore(out)


def streak_layer(batch: int, height: int, width: int, params: Params, gen: np.random.Generator) -> Tensor:
    """The summed streak brightness S, shape (B, 1, H, W) float32 in [0, 1]."""
    total = torch.zeros(batch, 1, height, width)
    for k in range(params.layers):
        total += _one_layer(batch, height, width, _layer_params(params, k), gen)
    return total.clamp(0.0, 1.0)


def _layer_params(p: Params, k: int) -> tuple[float, float, float, float, float]:
    """(density, length, angle, width, intensity) of layer k: later layers are farther rain."""
    t = k / (p.layers - 1) if p.layers > 1 else 0.0
    return (
        p.density,
        max(p.length * (1.0 - 0.4 * t), 1.0),
        p.angle + p.spread * _SPREAD_OFFSETS[k],
        max(p.width * (1.0 - 0.4 * t), 0.3),
        p.intensity * (1.0 - 0.35 * t),
    )


def _one_layer(
    batch: int, height: int, width: int, lp: tuple[float, float, float, float, float], gen: np.random.Generator
) -> Tensor:
    density, length, angle, line_w, intensity = lp
    # Tilt from vertical -> line angle from +x (counter-clockwise, y up): "/" at positive tilt.
    kernel = line_kernel(length, 90.0 - angle, line_w, taper=_TAPER, normalize=False).float()
    kh, kw = kernel.shape
    # Seeds cover the image plus the kernel margin, so streaks enter from outside the frame.
    u = torch.from_numpy(gen.random((batch, 1, height + kh - 1, width + kw - 1), dtype=np.float32))
    seeds = ((u - (1.0 - density)) / max(density, 1e-12)).clamp(0.0, 1.0)
    seeds = torch.where(seeds > 0, 0.35 + 0.65 * seeds, seeds)  # no near-invisible streaks
    streaks = F.conv2d(seeds, torch.flip(kernel, (0, 1))[None, None])
    # Soften wide streaks a little (drops are out of focus); thin ones stay crisp.
    return intensity * gaussian_blur(streaks, 0.3 * (line_w - 1.0))
