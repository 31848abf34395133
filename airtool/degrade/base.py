"""Shared pieces of the degradation ops: image checks, kernels, colour curves, sampling.

Every op module (``noise``, ``rain``, ``haze``, ``blur``, ``lowlight``, ``jpeg``) has the same
three-part interface (see :class:`DegradeOp`): a frozen ``Params`` dataclass, ``sample(rng,
preset, **fixed) -> Params`` and a pure ``apply(img, params, rng=None) -> Tensor``.

Image contract for every ``apply``: a floating torch tensor ``(C, H, W)`` or ``(B, C, H, W)``
with values in [0, 1], C = 1 (grey) or 3 (RGB). The result has the same shape and dtype and is
clipped to [0, 1]. Nothing here touches the global torch or numpy random state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from airtool.errors import UsageError

PRESETS: tuple[str, ...] = ("light", "medium", "heavy")
SEED_MAX = 2**32 - 1  # also a valid seed for numpy's legacy RandomState


class DegradeOp(Protocol):
    """What an op module provides (modules are registered in ``airtool.degrade.registry``)."""

    NAME: str
    KEYS: Mapping[str, KeySpec]
    Params: type

    def sample(self, rng: np.random.Generator, preset: str | None = None, **fixed: Any) -> Any: ...

    def apply(self, img: Tensor, params: Any, rng: np.random.Generator | None = None) -> Tensor: ...


# --------------------------------------------------------------------------- image plumbing


def as_batch(img: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """Check the image contract; return a (B, C, H, W) view and a function restoring the shape.

    The restore function also clips to [0, 1] and casts back to the input dtype.
    """
    if not isinstance(img, Tensor):
        raise TypeError(f"expected a torch.Tensor image, got {type(img).__name__}")
    if not img.is_floating_point():
        raise TypeError(f"expected a floating tensor in [0, 1], got dtype {img.dtype}")
    if img.dim() not in (3, 4):
        raise ValueError(f"expected shape (C, H, W) or (B, C, H, W), got {tuple(img.shape)}")
    if img.shape[-3] not in (1, 3):
        raise ValueError(f"expected 1 (grey) or 3 (RGB) channels, got {img.shape[-3]}")
    squeeze = img.dim() == 3
    dtype = img.dtype

    def restore(out: Tensor) -> Tensor:
        out = out.clamp(0.0, 1.0).to(dtype)
        return out[0] if squeeze else out

    return (img.unsqueeze(0) if squeeze else img), restore


def resolve_rng(rng: np.random.Generator | None, seed: int) -> np.random.Generator:
    """The generator per-pixel randomness comes from: ``rng`` if given, else one from ``seed``."""
    return rng if rng is not None else np.random.default_rng(seed)


def draw_seed(rng: np.random.Generator) -> int:
    """A fresh per-op seed (a plain int, JSON-safe)."""
    return int(rng.integers(0, SEED_MAX, endpoint=True))


def to_uint8_hwc(img: Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) uint8, rounded to the nearest level."""
    arr = (img.detach().to("cpu", torch.float64).clamp(0, 1) * 255.0).round()
    return arr.permute(1, 2, 0).numpy().astype(np.uint8)


def from_uint8_hwc(arr: np.ndarray, like: Tensor) -> Tensor:
    """(H, W, C) or (H, W) uint8 -> (C, H, W) float in [0, 1] with ``like``'s dtype and device."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    out = torch.from_numpy(np.array(arr.transpose(2, 0, 1))).to(torch.float32) / 255.0
    return out.to(like.device, like.dtype)


def quantize8(x: Tensor) -> Tensor:
    """Clip to [0, 1] and round to the nearest of the 256 8-bit levels."""
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


# --------------------------------------------------------------------------- sRGB (IEC 61966-2-1)


def srgb_to_linear(x: Tensor) -> Tensor:
    """Undo the sRGB transfer curve (IEC 61966-2-1 piecewise formula), [0, 1] -> [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: Tensor) -> Tensor:
    """Apply the sRGB transfer curve (IEC 61966-2-1 piecewise formula), [0, 1] -> [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1.0 / 2.4) - 0.055)


# --------------------------------------------------------------------------- kernels / filtering


def conv2d_same(img: Tensor, kernel: Tensor, mode: str = "reflect") -> Tensor:
    """Convolve every channel of (B, C, H, W) ``img`` with the 2-D PSF ``kernel`` (true convolution).

    The output has the input's size; borders are padded with ``mode`` ("reflect", falling back
    to "replicate" when the image is smaller than the kernel, or "constant" for zeros).
    """
    kh, kw = kernel.shape
    c = img.shape[1]
    weight = torch.flip(kernel, (0, 1)).to(img.dtype).expand(c, 1, kh, kw)
    # Padding that keeps the kernel centre (index k//2) on the output pixel.
    pad = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)
    if mode == "reflect" and (max(pad[:2]) >= img.shape[-1] or max(pad[2:]) >= img.shape[-2]):
        mode = "replicate"
    padded = F.pad(img, pad, mode=mode) if mode != "constant" else F.pad(img, pad)
    return F.conv2d(padded, weight, groups=c)


def gaussian_kernel1d(sigma: float, radius: int | None = None) -> Tensor:
    """Normalised 1-D Gaussian (float64), radius ceil(3 sigma) unless given."""
    r = int(math.ceil(3.0 * sigma)) if radius is None else radius
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / max(sigma, 1e-8)) ** 2)
    return k / k.sum()


def gaussian_blur(img: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W) with reflect padding; identity for sigma <= 0."""
    if sigma <= 0:
        return img
    k = gaussian_kernel1d(sigma)
    out = conv2d_same(img, k[None, :])
    return conv2d_same(out, k[:, None])


def line_kernel(
    length: float, angle: float, width: float = 1.0, taper: float = 0.0, normalize: bool = True
) -> Tensor:
    """Anti-aliased straight-line kernel (float64, odd square size, centred).

    ``length`` is the extent of the line in pixels (a horizontal line of length L covers L
    pixels), ``angle`` in degrees counter-clockwise from the +x axis (image y points down),
    ``width`` the line thickness in pixels. Pixel weights are the exact coverage of the thick
    segment for axis-aligned edges (a 1-pixel box filter on the distance). ``taper`` in [0, 1]
    dims the ends (weight x (1 - taper * s^2), s = position along the line in [-1, 1]).
    Normalised to sum 1 when ``normalize``; otherwise the centre line has weight 1.
    """
    half_len = max(length - 1.0, 0.0) / 2.0
    size = 2 * int(math.ceil(half_len + width / 2.0 + 1.0)) + 1
    r = size // 2
    coords = torch.arange(-r, r + 1, dtype=torch.float64)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    theta = math.radians(angle)
    ux, uy = math.cos(theta), -math.sin(theta)  # direction in (x, y-down) coordinates
    along = xx * ux + yy * uy
    across = (-xx * uy + yy * ux).abs()
    w_across = (width / 2.0 + 0.5 - across).clamp(0.0, 1.0)
    w_along = (length / 2.0 + 0.5 - along.abs()).clamp(0.0, 1.0)
    k = w_across * w_along
    if taper > 0 and half_len > 0:
        s = (along / half_len).clamp(-1.0, 1.0)
        k = k * (1.0 - taper * s**2)
    k = crop_kernel(k)
    return k / k.sum() if normalize else k


def crop_kernel(k: Tensor, eps: float = 1e-12) -> Tensor:
    """Trim all-zero borders of a kernel symmetrically, so the centre pixel stays the centre."""
    nz = (k.abs() > eps).nonzero()
    if nz.numel() == 0:
        return k
    cy, cx = k.shape[0] // 2, k.shape[1] // 2
    ry = int((nz[:, 0] - cy).abs().max())
    rx = int((nz[:, 1] - cx).abs().max())
    return k[cy - ry : cy + ry + 1, cx - rx : cx + rx + 1].contiguous()


# --------------------------------------------------------------------------- parameter sampling


@dataclass(frozen=True)
class Uniform:
    """Continuous uniform range [lo, hi]."""

    lo: float
    hi: float

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.lo, self.hi))

    def contains(self, v: Any) -> bool:
        return self.lo <= v <= self.hi


@dataclass(frozen=True)
class LogUniform(Uniform):
    """Log-uniform range [lo, hi] (lo > 0)."""

    def draw(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.lo), math.log(self.hi))))


@dataclass(frozen=True)
class IntRange(Uniform):
    """Integers lo..hi inclusive."""

    def draw(self, rng: np.random.Generator) -> int:  # type: ignore[override]
        return int(rng.integers(int(self.lo), int(self.hi), endpoint=True))


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values (uniformly)."""

    values: tuple[Any, ...]

    def draw(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))] if len(self.values) > 1 else self.values[0]

    def contains(self, v: Any) -> bool:
        return v in self.values


Dist = Uniform | Choice


def union(dists: Sequence[Dist]) -> Dist:
    """Smallest distribution of the same kind covering all of ``dists`` (preset ``None``)."""
    first = dists[0]
    if isinstance(first, Choice):
        values: list[Any] = []
        for d in dists:
            values += [v for v in d.values if v not in values]  # type: ignore[union-attr]
        return Choice(tuple(values))
    return type(first)(min(d.lo for d in dists), max(d.hi for d in dists))  # type: ignore[union-attr]


def preset_ranges(
    op: str, table: Mapping[str, Mapping[str, Dist]], preset: str | Sequence[str] | None
) -> dict[str, Dist]:
    """The sampling ranges of ``preset``; ``None`` means the union of all presets, and a sequence
    of names the union of those (training sources: ``[light, medium]``)."""
    names = PRESETS if preset is None else (preset,) if isinstance(preset, str) else tuple(preset)
    for name in names:
        if name not in table:
            raise UsageError(f"--{op}: unknown preset {name!r} (use light, medium or heavy)")
    if len(names) == 1:
        return dict(table[names[0]])
    return {k: union([table[p][k] for p in names]) for k in table[names[0]]}


def sample_fields(
    rng: np.random.Generator, ranges: Mapping[str, Dist], fixed: Mapping[str, Any]
) -> dict[str, Any]:
    """Draw every ranged field in order, then let ``fixed`` override.

    Every range is drawn even when fixed, so fixing one key never changes the others.
    """
    values = {k: d.draw(rng) for k, d in ranges.items()}
    values.update(fixed)
    return values


def sample_params(
    module: Any, rng: np.random.Generator, preset: str | None, fixed: Mapping[str, Any], seeded: bool = True
) -> Any:
    """The common ``sample``: validate ``fixed``, draw the preset's ranges, then (if ``seeded``)
    a per-op seed for the per-pixel noise; ``fixed`` wins everywhere.

    ``module`` is the op module (its NAME, KEYS, PRESETS and Params are used).
    """
    fixed = check_fixed(module.NAME, module.KEYS, fixed)
    values = sample_fields(rng, preset_ranges(module.NAME, module.PRESETS, preset), fixed)
    if seeded:
        seed = draw_seed(rng)  # drawn even when fixed, so the stream position never depends on it
        values["seed"] = fixed.get("seed", seed)
    return module.Params(**values)


# --------------------------------------------------------------------------- keys (spec values)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class KeySpec:
    """One user-settable parameter: its type, hard limits and help text.

    ``kind`` is "float", "int", "bool", "choice" or "str". ``lo``/``hi`` are the hard limits
    (wider than any preset). ``choices`` lists the allowed words for "choice".
    """

    kind: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def convert(self, op: str, key: str, value: Any) -> Any:
        """Parse a text value (or check a Python one); raise UsageError naming op and key."""
        try:
            v = self._coerce(value)
        except (TypeError, ValueError):
            raise UsageError(f"--{op}: {key}={value!r} is not a valid {self._what()}") from None
        if self.kind == "choice" and v not in self.choices:
            raise UsageError(f"--{op}: {key}={v!r} is not one of: {', '.join(self.choices)}")
        if self.kind in ("float", "int") and not (self.lo <= v <= self.hi):  # type: ignore[operator]
            raise UsageError(f"--{op}: {key}={v:g} is out of range [{self.lo:g}, {self.hi:g}]")
        return v

    def _coerce(self, value: Any) -> Any:
        if self.kind == "float":
            v = float(value)
            if not math.isfinite(v):
                raise ValueError
            return v
        if self.kind == "int":
            v = float(value)
            if not v.is_integer():
                raise ValueError
            return int(v)
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError
        return str(value)

    def _what(self) -> str:
        return {"float": "number", "int": "integer", "bool": "boolean (true/false)"}.get(self.kind, "value")


def check_fixed(op: str, keys: Mapping[str, KeySpec], fixed: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``fixed`` overrides against ``keys``; return them converted."""
    out: dict[str, Any] = {}
    for key, value in fixed.items():
        if key not in keys:
            raise UsageError(f"--{op}: unknown key {key!r} (valid keys: {', '.join(keys)})")
        out[key] = keys[key].convert(op, key, value)
    return out
