"""Haze by the atmospheric scattering model: I = J t + A (1 - t), t = exp(-beta d).

A and beta follow RESIDE outdoor (OTS/SOTS: A in [0.8, 1.0], beta in [0.04, 0.2]; the SOTS file
names encode the pair, e.g. ``0001_0.8_0.2.jpg``). Depth d is in "RESIDE-like units": solving
the model for d = -ln(t) / beta on the five SOTS_outdoor_mini pairs gives 5th-95th percentiles
of about 1.8-2.4 to 3.3-4.2 (sky excluded, where A - J is too small to solve), so normalised
depth proxies are mapped from [0, 1] (near..far) to [near, far] = [2, 5] by default.

Depth sources (``depth=``): ``linear`` (top of the frame far, bottom near), ``radial`` (centre
far, corners near), ``uniform`` (everything at mid depth), ``auto`` (estimated from the image:
vertical position plus a brightness/dark-channel cue, smoothed edge-aware), or a path to a
grey depth image (brighter = farther; read with Pillow, resized to the image). No network.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from airtool.degrade.base import (
    Choice,
    KeySpec,
    Uniform,
    as_batch,
    gaussian_blur,
    sample_params,
)
from airtool.errors import UsageError

NAME = "haze"
DEPTH_PROXIES: tuple[str, ...] = ("auto", "linear", "radial", "uniform")


@dataclass(frozen=True)
class Params:
    """Haze parameters.

    beta: scattering coefficient per depth unit (RESIDE outdoor: 0.04-0.2).
    A: atmospheric light (grey), 0-1.
    depth: "auto", "linear", "radial", "uniform" or a path to a depth image (bright = far).
    near, far: depth (RESIDE-like units) that the nearest / farthest point maps to.
    """

    beta: float = 0.12
    A: float = 0.9
    depth: str = "auto"
    near: float = 2.0
    far: float = 5.0


KEYS: dict[str, KeySpec] = {
    "beta": KeySpec("float", 0.0, 5.0, help="scattering coefficient per depth unit"),
    "A": KeySpec("float", 0.0, 1.0, help="atmospheric light"),
    "depth": KeySpec("str", help="auto | linear | radial | uniform | PATH (grey image, bright = far)"),
    "near": KeySpec("float", 0.0, 100.0, help="depth of the nearest point"),
    "far": KeySpec("float", 0.0, 100.0, help="depth of the farthest point"),
}

PRESETS: dict[str, dict[str, Any]] = {
    "light": {"beta": Uniform(0.04, 0.1), "A": Uniform(0.8, 1.0), "depth": Choice(("auto",))},
    "medium": {"beta": Uniform(0.1, 0.2), "A": Uniform(0.8, 1.0), "depth": Choice(("auto",))},
    # Beyond OTS's 0.2 on purpose: thick fog (t from ~0.6 near down to ~0.2 far).
    "heavy": {"beta": Uniform(0.2, 0.35), "A": Uniform(0.8, 1.0), "depth": Choice(("auto",))},
}


def sample(rng: np.random.Generator, preset: str | None = None, **fixed: Any) -> Params:
    """Random haze params from ``preset`` (None: any preset); ``fixed`` keys override."""
    params = sample_params(sys.modules[__name__], rng, preset, fixed, seeded=False)
    check_params(params)
    return params


def check_params(params: Params) -> None:
    """Raise UsageError for an unusable depth source or near > far."""
    if params.near > params.far:
        raise UsageError(f"--haze: near={params.near:g} is larger than far={params.far:g}")
    if params.depth not in DEPTH_PROXIES and not _depth_path(params.depth).is_file():
        raise UsageError(
            f"--haze: depth={params.depth!r} is neither one of {', '.join(DEPTH_PROXIES)} nor an image file"
        )


def apply(img: Tensor, params: Params, rng: np.random.Generator | None = None) -> Tensor:
    """Hazy copy of ``img`` ((C,H,W) or (B,C,H,W) float in [0,1]); same shape/dtype, in [0,1].

    Deterministic: ``rng`` is accepted for interface symmetry and not used.
    """
    check_params(params)
    x, _ = as_batch(img)
    return apply_scene(img, params, depth_map(x, params.depth))


def scene_map(img: Tensor) -> Tensor:
    """The part of the haze that belongs to the whole scene, not to a crop: the "auto" depth map.

    (C,H,W) float image in [0, 1] → (1, H, W) float32 in [0, 1], 1 = far. Training hazes each
    crop with its window of this map (engine/training/data.py): a depth estimated on the crop alone would
    stretch near..far over every 64² window (a 1.0 span, against 0.1-0.35 for a 64² window of
    the whole image's map), unlike SOTS, whose depth varies slowly over the frame.
    """
    return depth_map(img[None], "auto")[0]


def apply_scene(img: Tensor, params: Params, depth: Tensor) -> Tensor:
    """``apply`` with a given normalised depth (same H, W as ``img``; 1 = far) in place of
    ``params.depth``: the depth window of a crop, cut from ``scene_map`` of its whole image."""
    x, restore = as_batch(img)
    t = transmission_at(params, depth.to(device=x.device, dtype=x.dtype).reshape(-1, 1, *x.shape[-2:]))
    return restore(x * t + params.A * (1.0 - t))


def transmission_at(params: Params, depth: Tensor) -> Tensor:
    """t = exp(-beta d) for a normalised depth map (1 = far), d mapped to [near, far]."""
    return torch.exp(-params.beta * (params.near + (params.far - params.near) * depth))


def transmission(img: Tensor, params: Params) -> Tensor:
    """t = exp(-beta d) for ``img``, shape (B, 1, H, W) (or (1, H, W) for a 3-D image)."""
    x, _ = as_batch(img)
    t = transmission_at(params, depth_map(x, params.depth))
    return t[0] if img.dim() == 3 else t


# --------------------------------------------------------------------------- depth


def depth_map(x: Tensor, source: str) -> Tensor:
    """Normalised depth (B, 1, H, W) float32 in [0, 1], 1 = far, for a (B, C, H, W) batch."""
    b, _, h, w = x.shape
    if source == "linear":
        n = torch.linspace(1.0, 0.0, h).view(1, 1, h, 1).expand(b, 1, h, w)
    elif source == "radial":
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        n = (1.0 - torch.sqrt(yy**2 + xx**2) / math.sqrt(2.0)).expand(b, 1, h, w)
    elif source == "uniform":
        n = torch.full((b, 1, h, w), 0.5)
    elif source == "auto":
        n = torch.cat([_auto_depth(img[None].float().cpu()) for img in x])
    else:
        n = _read_depth(_depth_path(source), h, w).expand(b, 1, h, w)
    return n.to(x.device).contiguous()


def _depth_path(source: str) -> Path:
    return Path(source[4:] if source.startswith("map:") else source)


def _read_depth(path: Path, h: int, w: int) -> Tensor:
    """A grey depth image resized to (h, w) and min-max normalised (bright = far)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("F") if im.mode in ("I", "I;16", "I;16B", "F") else im.convert("L").convert("F")
            arr = np.asarray(im.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    except OSError as exc:
        raise UsageError(f"--haze: cannot read depth map {str(path)!r}: {exc}") from None
    return _normalise(torch.from_numpy(arr.copy()))[None, None]


def _normalise(n: Tensor, lo_q: float = 0.01, hi_q: float = 0.99) -> Tensor:
    """Robust min-max to [0, 1] (1st/99th percentiles); a flat map becomes 0.5."""
    flat = n.flatten().float()
    if flat.numel() > 1_000_000:  # quantile() limit; a strided subsample is plenty
        flat = flat[:: flat.numel() // 1_000_000 + 1]
    lo, hi = torch.quantile(flat, lo_q), torch.quantile(flat, hi_q)
    if float(hi - lo) < 1e-6:
        return torch.full_like(n, 0.5)
    return ((n - lo) / (hi - lo)).clamp(0.0, 1.0)


def _auto_depth(img: Tensor) -> Tensor:
    """Depth guessed from one (1, C, H, W) image: far = high in the frame and bright/hazy-looking.

    Cue 1: vertical position (top far). Cue 2: the dark channel (per-pixel channel minimum,
    eroded over a window): it is high for sky and distant, washed-out regions and low for
    near, saturated or shadowed objects (He et al.'s dark channel prior read backwards).
    The mix is smoothed by a guided filter with the image's luminance as guide, so depth
    edges follow image edges instead of bleeding halos, then normalised to [0, 1].
    """
    _, _, h, w = img.shape
    scale = max(h, w)
    vertical = torch.linspace(1.0, 0.0, h).view(1, 1, h, 1).expand(1, 1, h, w)
    dark = img.min(dim=1, keepdim=True).values
    r = max(1, scale // 60)
    dark = -_separable(F.max_pool2d, -dark, r)  # erosion: min over a (2r+1)^2 window
    dark = _normalise(gaussian_blur(dark, scale / 100.0))
    raw = 0.55 * vertical + 0.45 * dark
    guide = img.mean(dim=1, keepdim=True)
    smooth = _guided_filter(guide, raw, radius=max(2, scale // 25), eps=1e-2)
    return _normalise(gaussian_blur(smooth, scale / 200.0))


def _separable(pool: Any, x: Tensor, r: int) -> Tensor:
    """A (2r+1)^2 pooling as two 1-D passes (rows, then columns), edge-replicated."""
    x = pool(F.pad(x, (r, r, 0, 0), mode="replicate"), (1, 2 * r + 1), stride=1)
    return pool(F.pad(x, (0, 0, r, r), mode="replicate"), (2 * r + 1, 1), stride=1)


def _box(x: Tensor, r: int) -> Tensor:
    """Mean over a (2r+1)^2 window, edge-replicated.

    By running sums (cumsum in float64, two passes), so the cost does not grow with ``r``: the
    guided filter's radius is 1/25 of the image side, and average pooling at that width took most
    of the depth estimate's time (docs/performance.md, Degradations).
    """
    return _running_mean(_running_mean(x, r, dim=-1), r, dim=-2)


def _running_mean(x: Tensor, r: int, dim: int) -> Tensor:
    pad = (r, r, 0, 0) if dim == -1 else (0, 0, r, r)
    sums = F.pad(x, pad, mode="replicate").double().cumsum(dim)
    sums = torch.cat([torch.zeros_like(sums.narrow(dim, 0, 1)), sums], dim=dim)
    n = x.shape[dim]
    window = sums.narrow(dim, 2 * r + 1, n) - sums.narrow(dim, 0, n)
    return (window / (2 * r + 1)).to(x.dtype)


def _guided_filter(guide: Tensor, src: Tensor, radius: int, eps: float) -> Tensor:
    """Grey guided filter (He et al., ECCV 2010) of ``src`` steered by ``guide``; (1,1,H,W)."""
    r = min(radius, (min(guide.shape[-2:]) - 1) // 2) or 1
    mean_i, mean_p = _box(guide, r), _box(src, r)
    cov = _box(guide * src, r) - mean_i * mean_p
    var = _box(guide * guide, r) - mean_i**2
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return _box(a, r) * guide + _box(b, r)
