"""Additive Gaussian (and Poisson-Gaussian) noise.

``sigma`` is on the 0-255 scale (``--noise 25``). Default output is clipped and **rounded** to
8-bit levels. ``protocol="promptir"`` reproduces the all-in-one papers' test sets
(AirNet/PromptIR/MoCE-IR; PromptIR ``utils/dataset_utils.py``, ``DenoiseTestDataset``): on the uint8 image,
``clip(img + sigma * randn, 0, 255).astype(uint8)`` (truncation, not rounding), with ``randn``
from numpy's legacy ``RandomState`` in (H, W, C) order (``promptir_noise``, which ``airtool
evaluate`` uses too).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from airtool.degrade.base import (
    KeySpec,
    Uniform,
    as_batch,
    quantize8,
    resolve_rng,
    sample_params,
    to_uint8_hwc,
)

NAME = "noise"


@dataclass(frozen=True)
class Params:
    """Noise parameters.

    sigma: Gaussian standard deviation on the 0-255 scale.
    quantize: "round" (8-bit levels, default) or "none" (float output).
    protocol: "airtool" (float noise, then ``quantize``) or "promptir" (uint8 truncation).
    poisson: photon count at white (peak); 0 disables the Poisson part.
    gray: one noise field shared by all channels.
    seed: seeds the noise field when ``apply`` gets no generator.
    """

    sigma: float = 25.0
    quantize: str = "round"
    protocol: str = "airtool"
    poisson: float = 0.0
    gray: bool = False
    seed: int = 0


KEYS: dict[str, KeySpec] = {
    "sigma": KeySpec("float", 0.0, 255.0, help="std on the 0-255 scale"),
    "quantize": KeySpec("choice", choices=("round", "none"), help="round to 8-bit levels or not"),
    "protocol": KeySpec("choice", choices=("airtool", "promptir"), help="promptir: uint8 truncation"),
    "poisson": KeySpec("float", 0.0, 1e6, help="Poisson peak (photons at white), 0 = off"),
    "gray": KeySpec("bool", help="same noise in every channel"),
    "seed": KeySpec("int", 0, 2**32 - 1, help="noise seed"),
}

# Sampling ranges per preset (sigma on the 0-255 scale). The benchmark levels 15/25/50 are
# the edges of these ranges.
PRESETS: dict[str, dict[str, Any]] = {
    "light": {"sigma": Uniform(5.0, 15.0)},
    "medium": {"sigma": Uniform(15.0, 30.0)},
    "heavy": {"sigma": Uniform(30.0, 50.0)},
}


def sample(rng: np.random.Generator, preset: str | None = None, **fixed: Any) -> Params:
    """Random noise params from ``preset`` (None: any preset); ``fixed`` keys override."""
    params = sample_params(sys.modules[__name__], rng, preset, fixed)
    _check(params)
    return params


def apply(
    img: Tensor, params: Params, rng: np.random.Generator | np.random.RandomState | None = None
) -> Tensor:
    """Noisy copy of ``img`` ((C,H,W) or (B,C,H,W) float in [0,1]); same shape/dtype, in [0,1].

    The noise comes from ``rng`` if given, else from ``params.seed``. The promptir protocol
    uses a legacy ``RandomState`` (the one passed in, else ``RandomState(params.seed)``).
    """
    _check(params)
    x, restore = as_batch(img)
    if params.protocol == "promptir":
        return restore(_apply_promptir(x, params.sigma, _legacy_state(rng, params.seed)))
    gen = resolve_rng(rng, params.seed)  # type: ignore[arg-type]
    y = x
    if params.poisson > 0:
        lam = x.detach().cpu().double().numpy() * params.poisson
        y = torch.from_numpy(gen.poisson(lam) / params.poisson).to(x.device, x.dtype)
    if params.sigma > 0:
        shape = (x.shape[0], 1, *x.shape[2:]) if params.gray else tuple(x.shape)
        field = torch.from_numpy(gen.standard_normal(shape).astype(np.float32, copy=False))
        y = y + (params.sigma / 255.0) * field.to(x.device, x.dtype)
    y = y.clamp(0.0, 1.0)
    return restore(quantize8(y) if params.quantize == "round" else y)


def _check(params: Params) -> None:
    if params.protocol == "promptir" and (params.poisson > 0 or params.gray):
        raise ValueError("protocol='promptir' is plain colour Gaussian noise: no poisson, no gray")


# --------------------------------------------------------------------------- PromptIR protocol


def _legacy_state(rng: Any, seed: int) -> np.random.RandomState:
    if isinstance(rng, np.random.RandomState):
        return rng
    if isinstance(rng, np.random.Generator):
        return np.random.RandomState(int(rng.integers(0, 2**32 - 1, endpoint=True)))
    return np.random.RandomState(seed)


def _apply_promptir(x: Tensor, sigma: float, state: np.random.RandomState) -> Tensor:
    out = []
    for img in x:  # images in batch order continue one stream, like the papers' loader
        noisy = promptir_noise(to_uint8_hwc(img), sigma, state)
        out.append(torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1))).to(img.device, img.dtype))
    return torch.stack(out)


def promptir_noise(clean: np.ndarray, sigma: float, state: np.random.RandomState) -> np.ndarray:
    """AirNet/PromptIR test-set σ noise on an 8-bit (H, W, C) image; float32 (H, W, C) in [0, 1].

    The one implementation of the protocol: ``noise.apply(..., protocol="promptir")`` (training
    data) and ``airtool evaluate`` both call it. ``clean`` is uint8 levels, or floats in [0, 1]
    that are clipped and rounded to the nearest level first. The noise is
    ``state.randn(H, W, C)`` (float64; the stream runs on across calls), added on the 0-255
    scale, clipped to [0, 255] and cast with ``astype(uint8)`` (truncation: the mean drops by
    about half a level). Returns those levels / 255 in float32.
    """
    if clean.dtype != np.uint8:
        clean = np.round(np.clip(clean.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    noise = state.randn(*clean.shape)
    levels = np.clip(clean + noise * sigma, 0, 255).astype(np.uint8)
    return levels.astype(np.float32) / np.float32(255.0)

