"""Rain streaks: bright, oriented as requested, Rain100L-like density at the light preset."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from airtool.degrade import rain
from airtool.degrade.base import gaussian_blur
from airtool.degrade.rain import Params
from tests.degrade.conftest import load_rgb


def streak_tilt(layer: torch.Tensor) -> float:
    """Dominant streak tilt from vertical (degrees, positive = "/") of a (H, W) streak layer.

    Structure tensor: the summed outer product of the gradient; its main eigenvector is the
    dominant gradient direction, perpendicular to the streaks. The layer is smoothed first:
    on 1-px lines, central differences attenuate the larger gradient component more and bias
    the angle towards 45 degrees.
    """
    s = gaussian_blur(layer.double()[None, None], 2.0)[0, 0]
    gx = (s[1:-1, 2:] - s[1:-1, :-2]) / 2
    gy = -(s[2:, 1:-1] - s[:-2, 1:-1]) / 2  # y up
    jxx, jyy, jxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    grad_dir = 0.5 * math.degrees(math.atan2(2 * jxy, jxx - jyy))
    streak_dir = grad_dir + 90.0  # counter-clockwise from +x
    return (90.0 - streak_dir + 90.0) % 180.0 - 90.0


def _layer(params: Params, size: int = 256) -> torch.Tensor:
    flat = torch.full((3, size, size), 0.3)
    return (rain.apply(flat, params) - flat)[0]


@pytest.mark.parametrize("angle", [-60.0, -30.0, -12.0, 0.0, 8.0, 25.0, 45.0])
def test_streaks_are_oriented_at_the_requested_angle(angle: float) -> None:
    params = Params(density=0.004, length=30, angle=angle, width=1.2, intensity=0.5, seed=4)
    tilt = streak_tilt(_layer(params))
    assert abs(tilt - angle) < 2.0, f"requested {angle}, measured {tilt:.2f}"


def test_directional_autocorrelation_peaks_along_the_streaks() -> None:
    # Correlation of the streak layer with itself shifted 6 px along each direction.
    layer = _layer(Params(density=0.004, length=30, angle=20.0, intensity=0.5, seed=2))
    layer = layer - layer.mean()
    best, best_corr = 0.0, -1.0
    for tilt in np.arange(-60.0, 61.0, 2.0):
        dx, dy = 6 * math.sin(math.radians(tilt)), -6 * math.cos(math.radians(tilt))
        sx, sy = int(round(dx)), int(round(dy))
        a = layer[max(0, sy) : layer.shape[0] + min(0, sy), max(0, sx) : layer.shape[1] + min(0, sx)]
        b = layer[max(0, -sy) : layer.shape[0] + min(0, -sy), max(0, -sx) : layer.shape[1] + min(0, -sx)]
        corr = float((a * b).mean())
        if corr > best_corr:
            best, best_corr = tilt, corr
    assert abs(best - 20.0) <= 10.0  # 6-px integer shifts resolve about +-10 degrees


def test_streaks_only_brighten_and_screen_stays_in_range() -> None:
    img = torch.rand(3, 96, 96)
    add = rain.apply(img, Params(intensity=0.8, blend="add"))
    assert bool((add >= img).all()) and float((add - img).max()) > 0.3
    screen = rain.apply(img, Params(intensity=0.8, blend="screen"))
    assert bool((screen >= img - 1e-6).all()) and bool((screen <= add + 1e-6).all())


def test_presets_get_heavier(real_crop: torch.Tensor) -> None:
    means = []
    for preset in ("light", "medium", "heavy"):
        diffs = [
            float((rain.apply(real_crop, rain.sample(np.random.default_rng(s), preset)) - real_crop).mean())
            for s in range(6)
        ]
        means.append(np.mean(diffs))
    assert means[0] < means[1] < means[2]


def test_light_preset_resembles_rain100l(shared_data: Path) -> None:
    # Rain100L: fraction of pixels brightened by > 0.05 and their mean brightening, on 10 real
    # pairs here (all 50: 4-31 %, median 14 %; mean 0.09-0.21). The light preset on the same
    # clean images (one draw each) must land in the real ranges, with a similar median.
    real_frac, real_mean, syn_frac, syn_mean = [], [], [], []
    for i, path in enumerate(sorted((shared_data / "Rain100L" / "input").glob("*.png"))[:10]):
        rainy, clean = load_rgb(path), load_rgb(path.parent.parent / "target" / path.name)
        for frac, mean, diff in (
            (real_frac, real_mean, rainy - clean),
            (syn_frac, syn_mean, rain.apply(clean, rain.sample(np.random.default_rng(i), "light")) - clean),
        ):
            d = diff.mean(0)
            mask = d > 0.05
            frac.append(float(mask.float().mean()))
            mean.append(float(d[mask].mean()))
    assert min(real_frac) - 0.03 <= np.median(syn_frac) <= max(real_frac)
    assert 0.5 < np.median(syn_frac) / np.median(real_frac) < 2.0
    assert 0.7 < np.median(syn_mean) / np.median(real_mean) < 1.5


def test_layers_add_directions() -> None:
    one = _layer(Params(layers=1, spread=0.0, seed=1))
    three = _layer(Params(layers=3, spread=25.0, seed=1))
    assert float(three.mean()) > float(one.mean())
