"""Blur by a point-spread function: camera shake, linear motion, defocus disk, Gaussian.

Kinds (``--blur KIND[:key=value,...]``):
- ``shake``: random camera-shake trajectory rasterised to a PSF, in the spirit of Boracchi &
  Foi (2012): a random walk whose velocity gets Gaussian jitter, a pull back to the start
  (centripetal term) and rare abrupt jerks. ``length`` is the path
  length in pixels, ``anxiety`` scales the jitter and the jerk rate.
- ``motion``: straight anti-aliased line, ``length`` pixels at ``angle`` degrees
  (counter-clockwise from horizontal).
- ``defocus``: uniform disk of ``radius`` pixels, anti-aliased by 8x8 supersampling.
- ``gauss``: isotropic Gaussian of ``sigma`` pixels.

The kernel (sums to 1) is stored in ``Params.kernel`` as a nested list, so the JSON sidecar
holds the exact PSF. Convolution uses reflect padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from airtool.degrade.base import (
    KeySpec,
    Uniform,
    as_batch,
    check_fixed,
    conv2d_same,
    crop_kernel,
    draw_seed,
    gaussian_kernel1d,
    line_kernel,
    preset_ranges,
    sample_fields,
)
from airtool.errors import UsageError

NAME = "blur"
KINDS: tuple[str, ...] = ("shake", "motion", "defocus", "gauss")
DEFAULT_KIND = "shake"  # GoPro-like camera shake is the blur of the 5-task benchmark


@dataclass(frozen=True)
class Params:
    """Blur parameters; fields that do not apply to ``kind`` are None.

    kind: "shake", "motion", "defocus" or "gauss".
    length: path length in pixels (shake, motion).
    angle: degrees counter-clockwise from horizontal (motion).
    anxiety: shake jitter strength, 0-0.1 (shake; 0.005 is Boracchi & Foi's typical value).
    radius: disk radius in pixels (defocus).
    sigma: Gaussian standard deviation in pixels (gauss).
    seed: trajectory seed (shake).
    kernel: the PSF as a nested list (rows), sums to 1; None = build it from the fields.
    """

    kind: str = DEFAULT_KIND
    length: float | None = None
    angle: float | None = None
    anxiety: float | None = None
    radius: float | None = None
    sigma: float | None = None
    seed: int | None = None
    kernel: list[list[float]] | None = None


KEYS: dict[str, KeySpec] = {
    "kind": KeySpec("choice", choices=KINDS, help="shake | motion | defocus | gauss"),
    "length": KeySpec("float", 1.0, 151.0, help="path length, px (shake, motion)"),
    "angle": KeySpec("float", -360.0, 360.0, help="degrees counter-clockwise from horizontal (motion)"),
    "anxiety": KeySpec("float", 0.0, 0.1, help="jitter strength (shake; Boracchi & Foi suggest 0.005)"),
    "radius": KeySpec("float", 0.5, 50.0, help="disk radius, px (defocus)"),
    "sigma": KeySpec("float", 0.1, 25.0, help="std, px (gauss)"),
    "seed": KeySpec("int", 0, 2**32 - 1, help="trajectory seed (shake)"),
}
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "shake": ("length", "anxiety", "seed"),
    "motion": ("length", "angle"),
    "defocus": ("radius",),
    "gauss": ("sigma",),
}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "shake": {
        "light": {"length": Uniform(4.0, 10.0), "anxiety": Uniform(0.001, 0.005)},
        "medium": {"length": Uniform(10.0, 20.0), "anxiety": Uniform(0.002, 0.006)},
        "heavy": {"length": Uniform(20.0, 35.0), "anxiety": Uniform(0.003, 0.008)},
    },
    "motion": {
        "light": {"length": Uniform(3.0, 9.0), "angle": Uniform(0.0, 180.0)},
        "medium": {"length": Uniform(9.0, 17.0), "angle": Uniform(0.0, 180.0)},
        "heavy": {"length": Uniform(17.0, 31.0), "angle": Uniform(0.0, 180.0)},
    },
    "defocus": {
        "light": {"radius": Uniform(1.0, 2.0)},
        "medium": {"radius": Uniform(2.0, 4.0)},
        "heavy": {"radius": Uniform(4.0, 7.0)},
    },
    "gauss": {
        "light": {"sigma": Uniform(0.5, 1.2)},
        "medium": {"sigma": Uniform(1.2, 2.5)},
        "heavy": {"sigma": Uniform(2.5, 4.5)},
    },
}


def sample(rng: np.random.Generator, preset: str | None = None, **fixed: Any) -> Params:
    """Random blur params (kernel included) from ``preset`` (None: any preset).

    ``kind`` defaults to "shake"; ``fixed`` keys override. Keys must apply to the kind.
    """
    fixed = check_fixed(NAME, KEYS, fixed)
    kind = fixed.pop("kind", DEFAULT_KIND)
    check_kind_keys(kind, fixed)
    values = sample_fields(rng, preset_ranges(NAME, PRESETS[kind], preset), fixed)
    if kind == "shake":
        values["seed"] = fixed.get("seed", draw_seed(rng))
    params = Params(kind=kind, **values)
    return replace(params, kernel=kernel_list(build_kernel(params)))


def check_kind_keys(kind: str, keys: Any) -> None:
    """Raise UsageError if a key does not apply to ``kind``."""
    for key in keys:
        if key not in KIND_KEYS[kind]:
            raise UsageError(
                f"--blur: {key}= does not apply to kind {kind!r} (its keys: {', '.join(KIND_KEYS[kind])})"
            )


def apply(img: Tensor, params: Params, rng: np.random.Generator | None = None) -> Tensor:
    """Blurred copy of ``img`` ((C,H,W) or (B,C,H,W) float in [0,1]); same shape/dtype, in [0,1].

    Uses ``params.kernel`` when present, else builds it from the fields. Deterministic:
    ``rng`` is accepted for interface symmetry and not used.
    """
    x, restore = as_batch(img)
    k = torch.tensor(params.kernel, dtype=torch.float64) if params.kernel is not None else build_kernel(params)
    return restore(conv2d_same(x, k.to(x.device)))


def kernel_list(k: Tensor) -> list[list[float]]:
    """Kernel as a JSON-ready nested list of floats."""
    return [[float(v) for v in row] for row in k.double()]


def build_kernel(params: Params) -> Tensor:
    """The PSF of ``params`` (float64, odd square size, sums to 1)."""
    if params.kind == "motion":
        return line_kernel(_need(params.length, "length"), _need(params.angle, "angle"), 1.0)
    if params.kind == "defocus":
        return disk_kernel(_need(params.radius, "radius"))
    if params.kind == "gauss":
        g = gaussian_kernel1d(_need(params.sigma, "sigma"))
        return torch.outer(g, g)
    if params.kind == "shake":
        gen = np.random.default_rng(_need(params.seed, "seed"))
        return shake_kernel(gen, _need(params.length, "length"), _need(params.anxiety, "anxiety"))
    raise ValueError(f"unknown blur kind {params.kind!r}")


def _need(value: Any, key: str) -> Any:
    if value is None:
        raise ValueError(f"blur params need {key!r} for this kind")
    return value


def disk_kernel(radius: float, supersample: int = 8) -> Tensor:
    """Anti-aliased uniform disk (defocus / pillbox PSF): pixel weight = covered area fraction."""
    r = int(math.ceil(radius - 0.5)) + 1
    offs = (torch.arange(supersample, dtype=torch.float64) + 0.5) / supersample - 0.5
    pix = torch.arange(-r, r + 1, dtype=torch.float64)
    sub = (pix[:, None] + offs[None, :]).flatten()  # sub-sample coordinates along one axis
    inside = (sub[:, None] ** 2 + sub[None, :] ** 2 <= radius**2).double()
    n = 2 * r + 1
    k = inside.view(n, supersample, n, supersample).mean(dim=(1, 3))
    return crop_kernel(k / k.sum())


def shake_kernel(gen: np.random.Generator, length: float, anxiety: float, steps: int = 2000) -> Tensor:
    """Camera-shake PSF from a random trajectory (after Boracchi & Foi 2012; own implementation).

    The trajectory has ``steps`` points and total path ``length`` px; each step the velocity
    gets Gaussian jitter and a pull towards the start (both x ``anxiety``), and with a small
    probability (also x ``anxiety``) an abrupt, nearly reversing change of direction. Points are splatted
    bilinearly onto a grid centred on the trajectory's centroid, then normalised to sum 1.
    """
    path = _trajectory(gen, length, anxiety, steps)
    path -= path.mean()
    radius = int(math.ceil(np.abs(path.real).max() + 1)), int(math.ceil(np.abs(path.imag).max() + 1))
    r = max(radius)
    k = np.zeros((2 * r + 1, 2 * r + 1))
    xs, ys = path.real + r, path.imag + r
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dy, dx, w in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(k, (y0 + dy, x0 + dx), w)
    t = torch.from_numpy(k)
    return crop_kernel(t / t.sum())


def _trajectory(gen: np.random.Generator, length: float, anxiety: float, steps: int) -> np.ndarray:
    """Complex positions of a random-walk trajectory with path length ``length``."""
    step = length / (steps - 1)
    centripetal = 0.15 * gen.random()  # pull back towards the start, per pixel of offset
    jitter = 10.0 * gen.random()
    jerk_prob = 0.2 * gen.random() * anxiety
    noise = gen.standard_normal((steps, 2)) @ np.array([1.0, 1j])
    jerks = gen.random(steps) < jerk_prob
    jerk_turn = np.exp(1j * np.pi * (0.5 + gen.random(steps)))  # 90..270 degrees
    v = step * np.exp(2j * np.pi * gen.random())
    pos = np.zeros(steps, dtype=complex)
    for t in range(1, steps):
        dv = anxiety * (jitter * noise[t] - centripetal * pos[t - 1]) * step
        if jerks[t]:
            dv += 2.0 * v * jerk_turn[t]
        v = v + dv
        v = v / max(abs(v), 1e-12) * step
        pos[t] = pos[t - 1] + v
    return pos
