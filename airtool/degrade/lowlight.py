"""Low light, simulated in linear light with shot and read noise (after Brooks et al.,
"Unprocessing Images for Learned Raw Denoising", CVPR 2019).

Steps: undo the sRGB curve (IEC 61966-2-1 piecewise formula) -> ``lin ** gamma * 2 ** ev``
(exposure cut by ``-ev`` stops; gamma > 1 crushes shadows a little more) -> sensor noise with
variance ``shot * x + read ** 2`` (Gaussian approximation of Poisson shot noise plus read
noise, per channel) -> clip -> quantise to ``bits`` in linear light (the sensor's ADC) -> sRGB
curve -> round to 8-bit levels. Presets are set so that CBSD68-like images land at a mean sRGB
brightness of about 0.05-0.15, like LOL-v1's low-light inputs (LOL_eval15_lowonly of the benchmark data:
means 0.04-0.10, about 1 level of visible, coloured noise).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from airtool.degrade.base import (
    Choice,
    KeySpec,
    LogUniform,
    Uniform,
    as_batch,
    linear_to_srgb,
    quantize8,
    resolve_rng,
    sample_params,
    srgb_to_linear,
)

NAME = "lowlight"


@dataclass(frozen=True)
class Params:
    """Low-light parameters.

    ev: exposure change in stops (negative darkens: linear light x 2**ev).
    gamma: extra power on linear light before the exposure cut (1 = none).
    shot: shot-noise gain: variance = shot * x (x linear, after darkening).
    read: read-noise standard deviation in linear units.
    bits: sensor quantisation in linear light (0 = none).
    quantize: "round" to 8-bit sRGB levels (default) or "none".
    seed: seeds the noise when ``apply`` gets no generator.
    """

    ev: float = -4.0
    gamma: float = 1.0
    shot: float = 5e-5
    read: float = 5e-4
    bits: int = 10
    quantize: str = "round"
    seed: int = 0


KEYS: dict[str, KeySpec] = {
    "ev": KeySpec("float", -12.0, 0.0, help="exposure change, stops (negative darkens)"),
    "gamma": KeySpec("float", 0.5, 3.0, help="extra power on linear light"),
    "shot": KeySpec("float", 0.0, 0.1, help="shot-noise gain (variance = shot * x)"),
    "read": KeySpec("float", 0.0, 0.1, help="read-noise std, linear units"),
    "bits": KeySpec("int", 0, 16, help="sensor bit depth in linear light, 0 = none"),
    "quantize": KeySpec("choice", choices=("round", "none"), help="round to 8-bit levels or not"),
    "seed": KeySpec("int", 0, 2**32 - 1, help="noise seed"),
}

PRESETS: dict[str, dict[str, Any]] = {
    "light": {
        "ev": Uniform(-3.5, -2.5),
        "gamma": Uniform(1.0, 1.1),
        "shot": LogUniform(1e-5, 4e-5),
        "read": LogUniform(1e-4, 4e-4),
        "bits": Choice((12,)),
    },
    # LOL-v1-like: mean sRGB ~0.05-0.12 on typical photos.
    "medium": {
        "ev": Uniform(-4.5, -3.5),
        "gamma": Uniform(1.0, 1.2),
        "shot": LogUniform(3e-5, 1e-4),
        "read": LogUniform(3e-4, 8e-4),
        "bits": Choice((10, 12)),
    },
    "heavy": {
        "ev": Uniform(-5.5, -4.5),
        "gamma": Uniform(1.0, 1.3),
        "shot": LogUniform(8e-5, 3e-4),
        "read": LogUniform(6e-4, 1.5e-3),
        "bits": Choice((10,)),
    },
}


def sample(rng: np.random.Generator, preset: str | None = None, **fixed: Any) -> Params:
    """Random low-light params from ``preset`` (None: any preset); ``fixed`` keys override."""
    return sample_params(sys.modules[__name__], rng, preset, fixed)


def apply(img: Tensor, params: Params, rng: np.random.Generator | None = None) -> Tensor:
    """Low-light copy of ``img`` ((C,H,W) or (B,C,H,W) float in [0,1]); same shape/dtype, in [0,1].

    Noise comes from ``rng`` if given, else from ``params.seed``.
    """
    x, restore = as_batch(img)
    lin = srgb_to_linear(x.double())
    low = lin**params.gamma * 2.0**params.ev
    if params.shot > 0 or params.read > 0:
        gen = resolve_rng(rng, params.seed)
        field = torch.from_numpy(gen.standard_normal(tuple(x.shape))).to(x.device)
        low = low + torch.sqrt(params.shot * low + params.read**2) * field
    low = low.clamp(0.0, 1.0)
    if params.bits > 0:
        levels = 2.0**params.bits - 1.0
        low = torch.round(low * levels) / levels
    out = linear_to_srgb(low)
    return restore(quantize8(out) if params.quantize == "round" else out)
