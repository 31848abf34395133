"""Cheap signs that a picture shows low light or blur, from classical image statistics.

Weights trained for noise, rain and haze do not know these two; DaAIR routes a dark photo to
its rain expert and darkens it. So ``restore`` looks at each picture before the model does and
says which of these it resembles. Both tests run on the luminance, area-averaged down to at most
``WORK_SIDE`` pixels a side (how the picture looks on a screen, and the same cost for any size):

- **low light**: mean luminance below ``DARK_MEAN``, or below ``DIM_MEAN`` with 95% of the
  pixels darker than ``DIM_BRIGHT`` (dim all over, unlike a dark scene with a bright subject).
- **blur**: the mean squared gradient over that of the picture halved (2 x 2 averages). A sharp
  edge gives 0.5 (its whole step falls between two pixels at both scales), an edge spread over
  many pixels 0.25, noise more than 0.5; sharp photos measure about 0.4 to 3. Below
  ``BLUR_RATIO`` the picture looks blurred. Contrast and brightness cancel out.

The thresholds were set on the shared benchmark images; ``tools/untrained_signs.py`` measures
their false alarms (clean, noisy, rainy and hazy photos) and misses (LOL, LIME, GoPro, and
synthetic blur and low light).
"""

from __future__ import annotations

import math

import numpy as np

SIGNS = ("lowlight", "blur")  # the tasks (airtool.tasks) these statistics can tell
WORK_SIDE = 1024
DARK_MEAN = 0.15
DIM_MEAN = 0.20
DIM_BRIGHT = 0.45  # for the 95th percentile of luminance
BLUR_RATIO = 0.38
MIN_SIDE = 32  # smaller pictures say too little about either
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601


def looks_like(pixels: np.ndarray) -> dict[str, str]:
    """Task name ("lowlight", "blur") -> the measurement behind it, for each sign ``pixels``
    show; ``pixels`` is (H, W, C) or (H, W), uint8, uint16 or float in [0, 1]."""
    if min(pixels.shape[:2]) < MIN_SIDE:
        return {}
    y = pooled_luminance(pixels, WORK_SIDE)
    signs = {}
    mean, bright = float(y.mean()), float(np.percentile(y, 95))
    if is_low_light(mean, bright):
        signs["lowlight"] = f"mean brightness {mean:.2f}, 95% of pixels below {bright:.2f}"
    ratio = detail_ratio(y)
    if ratio is not None and ratio < BLUR_RATIO:
        signs["blur"] = f"fine-detail ratio {ratio:.2f}, sharp photos {BLUR_RATIO} or more"
    return signs


def is_low_light(mean: float, bright: float) -> bool:
    return mean < DARK_MEAN or (mean < DIM_MEAN and bright < DIM_BRIGHT)


def detail_ratio(y: np.ndarray) -> float | None:
    """Mean squared gradient of ``y`` over that of ``y`` halved; None where the halved picture
    has almost no detail (a flat or nearly flat picture is neither sharp nor blurred)."""
    coarse = gradient_energy(halve(y))
    if coarse < 1e-6:
        return None
    return gradient_energy(y) / coarse


def gradient_energy(y: np.ndarray) -> float:
    return float(np.square(np.diff(y, axis=0)).mean() + np.square(np.diff(y, axis=1)).mean())


def halve(y: np.ndarray) -> np.ndarray:
    """2 x 2 area average (an odd last row or column is dropped)."""
    h, w = y.shape[0] // 2 * 2, y.shape[1] // 2 * 2
    return y[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def pooled_luminance(pixels: np.ndarray, side: int) -> np.ndarray:
    """Luminance in [0, 1] as float32, area-averaged by the smallest power of two that brings
    the longer side to ``side`` or less; computed band by band, so a large picture never has a
    full-size float copy."""
    h, w = pixels.shape[:2]
    factor = 2 ** max(0, math.ceil(math.log2(max(h, w) / side)))
    h, w = h // factor * factor, w // factor * factor
    scale = _scale(pixels.dtype)
    rows = max(1, 256 // factor) * factor
    bands = [_band_luminance(pixels[top : min(top + rows, h), :w], scale, factor) for top in range(0, h, rows)]
    return np.concatenate(bands, axis=0)


def _band_luminance(band: np.ndarray, scale: float, factor: int) -> np.ndarray:
    band = band.astype(np.float32) * np.float32(scale)
    if band.ndim == 3 and band.shape[2] >= 3:
        y = band[..., :3] @ _LUMA
    else:
        y = band.reshape(band.shape[0], band.shape[1], -1)[..., 0]
    y = np.clip(y, 0.0, 1.0)
    h, w = y.shape
    return y.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _scale(dtype: np.dtype) -> float:
    if np.issubdtype(dtype, np.integer):
        return 1.0 / float(np.iinfo(dtype).max)
    return 1.0
