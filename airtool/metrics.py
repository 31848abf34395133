"""PSNR and SSIM exactly as the all-in-one papers compute them, in float64 numpy.

No scikit-image at run time; ``tests/test_metrics.py`` checks these against it. Conventions
(as each paper's test code computes them, e.g. PromptIR ``utils/val_utils.py``, BasicSR
``basicsr/metrics/psnr_ssim.py``):

- ``promptir``  (AirNet, PromptIR, DaAIR, AnyIR): RGB, clip to [0, 1], float (no rounding),
  PSNR with data range 1, SSIM = scikit-image defaults: 7×7 uniform window, sample covariance,
  mean over channels.
- ``moce``      (MoCE-IR): as promptir, SSIM with scikit-image ``gaussian_weights=True``
  (σ 1.5, truncate 3.5 → 11 taps; scikit-image still applies the sample-covariance factor).
- ``symunet``   (SymUNet): as promptir but on the raw, unclamped output.
- ``ndr``       (NDR-Restore): PSNR on clipped [0, 1] floats; SSIM after Wang et al. 2004:
  Gaussian 11×11, σ 1.5, population covariance, on the 0-255 scale, valid region.
- ``basicsr-y`` (BasicSR/Restormer, MATLAB-compatible): round to 8 bit, BT.601 luma (16-235)
  on the 0-255 scale, optional border crop, PSNR with peak 255, Wang SSIM on Y.

Images are ``(H, W)`` or ``(H, W, C)`` arrays; float inputs are in [0, 1].

``METRICS`` is the registry the protocols score with: name -> ``Metric`` (a function of the
prepared pair and the spec, and whether higher is better). A further metric is one function
plus one ``METRICS`` line; ``score_all`` then reports it under every protocol.
LPIPS is not included: its pretrained AlexNet/VGG backbone weights are downloaded at run time,
and airtool downloads nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# BT.601 studio-range luma for RGB in [0, 1], result on the 0-255 scale (MATLAB rgb2ycbcr).
_BT601_Y = np.array([65.481, 128.553, 24.966])


@dataclass(frozen=True)
class MetricSpec:
    """How one (restored, target) pair is scored. See the module docstring for the presets."""

    clip: bool = True  # clip both images to [0, 1] first
    quantize: bool = False  # round to 8-bit levels first (BasicSR tensor2img)
    luma: bool = False  # score BT.601 Y instead of RGB
    scale: float = 1.0  # pixel scale the metrics see: 1 (skimage float) or 255
    ssim_gaussian: bool = False  # Gaussian σ 1.5 / 11 taps instead of 7×7 uniform
    ssim_sample_covariance: bool = True  # skimage default; False = Wang et al. 2004
    ssim_scale: float | None = None  # SSIM pixel scale when it differs from ``scale`` (NDR)
    crop_border: int = 0


METRIC_SPECS: dict[str, MetricSpec] = {
    "promptir": MetricSpec(),
    "moce": MetricSpec(ssim_gaussian=True),
    "symunet": MetricSpec(clip=False),
    "ndr": MetricSpec(ssim_gaussian=True, ssim_sample_covariance=False, ssim_scale=255.0),
    "basicsr-y": MetricSpec(
        quantize=True, luma=True, scale=255.0, ssim_gaussian=True, ssim_sample_covariance=False
    ),
}


def _check_pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: restored {pred.shape} vs target {target.shape}")
    if pred.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {pred.shape}")
    return np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)


def psnr(pred: np.ndarray, target: np.ndarray, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (scikit-image formula).

    Identical images give ``math.inf``; different shapes raise ``ValueError``.
    """
    a, b = _check_pair(pred, target)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def _filter_axis(x: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """Correlate ``x`` with a centred odd-length 1-D kernel along ``axis``.

    Borders use half-sample symmetric padding, which is scipy.ndimage's ``mode="reflect"``.
    """
    radius = len(weights) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(x, pad, mode="symmetric")
    n = x.shape[axis]
    out = np.zeros_like(x)
    for tap, w in enumerate(weights):
        out += w * np.take(padded, range(tap, tap + n), axis=axis)
    return out


def _box_axis(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Mean over a centred window of odd ``size`` along ``axis`` (running sums, reflect borders)."""
    radius = size // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(x, pad, mode="symmetric")
    csum = np.cumsum(padded, axis=axis)
    zero_shape = list(csum.shape)
    zero_shape[axis] = 1
    csum = np.concatenate([np.zeros(zero_shape), csum], axis=axis)
    n = x.shape[axis]
    upper = np.take(csum, range(size, size + n), axis=axis)
    lower = np.take(csum, range(0, n), axis=axis)
    return (upper - lower) / size


def gaussian_kernel1d(sigma: float = 1.5, truncate: float = 3.5) -> np.ndarray:
    """Normalised 1-D Gaussian taps, radius ``int(truncate·σ + 0.5)`` as in scipy.ndimage."""
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


def _ssim_2d(a: np.ndarray, b: np.ndarray, *, data_range: float, gaussian: bool, win_size: int,
             sample_covariance: bool, k1: float, k2: float) -> float:
    """SSIM of one channel: local statistics, SSIM map, mean over the valid interior."""
    if gaussian:
        taps = gaussian_kernel1d()
        win_size = len(taps)

        def smooth(x: np.ndarray) -> np.ndarray:
            return _filter_axis(_filter_axis(x, taps, 0), taps, 1)
    else:
        def smooth(x: np.ndarray) -> np.ndarray:
            return _box_axis(_box_axis(x, win_size, 0), win_size, 1)

    # scikit-image applies NP/(NP-1) with NP = win_size² whatever the window (also Gaussian).
    cov_norm = win_size**2 / (win_size**2 - 1) if sample_covariance else 1.0
    ux, uy = smooth(a), smooth(b)
    vx = cov_norm * (smooth(a * a) - ux * ux)
    vy = cov_norm * (smooth(b * b) - uy * uy)
    vxy = cov_norm * (smooth(a * b) - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return float(s_map[pad : s_map.shape[0] - pad, pad : s_map.shape[1] - pad].mean())


def ssim(
    pred: np.ndarray,
    target: np.ndarray,
    *,
    data_range: float = 1.0,
    gaussian: bool = False,
    win_size: int = 7,
    sample_covariance: bool = True,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """Mean SSIM, per channel then averaged (scikit-image ``channel_axis=-1`` semantics).

    Defaults are scikit-image's (7×7 uniform window, sample covariance). ``gaussian=True`` uses
    σ 1.5 and 11 taps; with ``sample_covariance=False`` that is Wang et al. 2004 / BasicSR, whose
    "valid" filtering equals filtering with any padding and then dropping the 5-pixel border.
    Raises ``ValueError`` on a shape mismatch, an even window or an image smaller than it.
    """
    a, b = _check_pair(pred, target)
    if win_size % 2 == 0:
        raise ValueError(f"SSIM window must be odd, got {win_size}")
    span = len(gaussian_kernel1d()) if gaussian else win_size
    if min(a.shape[:2]) < span:
        raise ValueError(f"image {a.shape[:2]} is smaller than the {span}×{span} SSIM window")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    scores = [
        _ssim_2d(a[..., c], b[..., c], data_range=data_range, gaussian=gaussian, win_size=win_size,
                 sample_covariance=sample_covariance, k1=k1, k2=k2)
        for c in range(a.shape[2])
    ]
    return float(np.mean(scores))


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 studio-range luma (16-235) on the 0-255 scale, for RGB in [0, 1]; (H, W, 3) -> (H, W)."""
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {img.shape}")
    return np.asarray(img, dtype=np.float64) @ _BT601_Y + 16.0


def center_crop_to_multiple(img: np.ndarray, base: int) -> np.ndarray:
    """Crop H and W down to multiples of ``base``, dropping ``excess // 2`` rows/columns first.

    This is the PromptIR/AirNet test-time crop: a 481×321 image becomes its top-left 480×320.
    """
    h, w = img.shape[:2]
    dh, dw = h % base, w % base
    return img[dh // 2 : h - dh + dh // 2, dw // 2 : w - dw + dw // 2]


def crop_border(img: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels on every side (BasicSR ``crop_border``)."""
    if border <= 0:
        return img
    return img[border:-border, border:-border]


def _prepare(img: np.ndarray, spec: MetricSpec) -> np.ndarray:
    x = np.asarray(img, dtype=np.float64)
    if spec.clip or spec.quantize:
        x = np.clip(x, 0.0, 1.0)
    if spec.quantize:
        x = np.round(x * 255.0) / 255.0
    if spec.luma:
        return rgb_to_y(x) * (spec.scale / 255.0)
    return x * spec.scale


def _psnr_metric(a: np.ndarray, b: np.ndarray, spec: MetricSpec) -> float:
    return psnr(a, b, data_range=spec.scale)


def _ssim_metric(a: np.ndarray, b: np.ndarray, spec: MetricSpec) -> float:
    ssim_scale = spec.ssim_scale or spec.scale
    factor = ssim_scale / spec.scale
    return ssim(a * factor, b * factor, data_range=ssim_scale, gaussian=spec.ssim_gaussian,
                sample_covariance=spec.ssim_sample_covariance)


@dataclass(frozen=True)
class Metric:
    """One registered metric: ``fn(a, b, spec)`` scores a pair already prepared under ``spec``
    (clipped/quantised/luma, on ``spec.scale``, border-cropped)."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray, MetricSpec], float]
    higher_is_better: bool = True


METRICS: dict[str, Metric] = {
    "psnr": Metric("psnr", _psnr_metric, higher_is_better=True),
    "ssim": Metric("ssim", _ssim_metric, higher_is_better=True),
}


def score_all(pred: np.ndarray, target: np.ndarray, spec: MetricSpec) -> dict[str, float]:
    """Every ``METRICS`` entry of a restored image against its target under one ``MetricSpec``.

    Both are float images in [0, 1] (``pred`` may overshoot; ``spec.clip`` decides).
    """
    _check_pair(pred, target)
    a, b = _prepare(pred, spec), _prepare(target, spec)
    a, b = crop_border(a, spec.crop_border), crop_border(b, spec.crop_border)
    return {name: metric.fn(a, b, spec) for name, metric in METRICS.items()}


def score(pred: np.ndarray, target: np.ndarray, spec: MetricSpec) -> tuple[float, float]:
    """(PSNR, SSIM) of a restored image against its target under one ``MetricSpec``.

    Both are float images in [0, 1] (``pred`` may overshoot; ``spec.clip`` decides).
    """
    values = score_all(pred, target, spec)
    return values["psnr"], values["ssim"]
