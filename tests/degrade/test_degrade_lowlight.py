"""Low light: exact sRGB curve, exposure in linear light, LOL-like brightness, noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from airtool.degrade import lowlight
from airtool.degrade.base import linear_to_srgb, srgb_to_linear
from airtool.degrade.lowlight import Params
from tests.degrade.conftest import load_rgb


def test_srgb_curve_is_iec_61966_2_1() -> None:
    x = torch.tensor([0.0, 0.04045, 0.5, 1.0], dtype=torch.float64)
    expected = torch.tensor([0.0, 0.04045 / 12.92, ((0.5 + 0.055) / 1.055) ** 2.4, 1.0], dtype=torch.float64)
    assert torch.allclose(srgb_to_linear(x), expected, atol=1e-12)
    grid = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(grid)), grid, atol=1e-9)
    assert abs(float(srgb_to_linear(torch.tensor(0.5, dtype=torch.float64))) - 0.214041) < 1e-6


@pytest.mark.parametrize("ev", [-1.0, -3.0, -5.0])
def test_exposure_scales_linear_light_exactly_without_noise(real_crop: torch.Tensor, ev: float) -> None:
    out = lowlight.apply(real_crop, Params(ev=ev, gamma=1.0, shot=0, read=0, bits=0, quantize="none"))
    ratio = float(srgb_to_linear(out.double()).mean() / srgb_to_linear(real_crop.double()).mean())
    assert abs(ratio / 2.0**ev - 1.0) < 1e-3  # float32 output only


@pytest.mark.parametrize("preset", ["light", "medium", "heavy"])
def test_exposure_holds_with_noise_and_quantisation(real_crop: torch.Tensor, preset: str) -> None:
    # Tolerance 5 %: the noise is zero-mean and both quantisers round (unbiased on average);
    # the only bias is clipping at 0, at most 0.4 * sigma_read per pixel that sits at black
    # (E[max(0, s z)] = 0.4 s): 0.4 * 1.5e-3 (heaviest read noise) = 6e-4 against a darkened
    # mean of ~1e-2 for this crop (lin mean 0.19 x 2^-4) -> < 6 % even if every pixel were black,
    # and most are not. Measured: 0.3-2 %.
    params = lowlight.sample(np.random.default_rng(3), preset, gamma=1.0, ev=-4.0)
    out = lowlight.apply(real_crop, params)
    ratio = float(srgb_to_linear(out.double()).mean() / srgb_to_linear(real_crop.double()).mean())
    assert abs(ratio / 2.0**-4 - 1.0) < 0.05


def test_gamma_darkens_shadows_more_than_highlights() -> None:
    ramp = torch.linspace(0.1, 1.0, 64).expand(3, 8, 64).contiguous()
    base = Params(ev=-2.0, gamma=1.0, shot=0, read=0, bits=0, quantize="none")
    crushed = Params(ev=-2.0, gamma=1.5, shot=0, read=0, bits=0, quantize="none")
    a, b = lowlight.apply(ramp, base), lowlight.apply(ramp, crushed)
    rel = srgb_to_linear(b.double()) / srgb_to_linear(a.double())
    assert float(rel[..., 0].mean()) < float(rel[..., -1].mean()) <= 1.0 + 1e-6


def test_medium_preset_brightness_is_lol_like(shared_data: Path) -> None:
    # LOL-v1 low-light inputs have mean sRGB brightness of about 0.04-0.10 (the 3 here) and
    # 0.05-0.15 in general. Medium on 12 CBSD68 photos must land there on the median.
    paths = sorted((shared_data / "CBSD68").glob("*.png"))[::6]
    means = []
    for i, path in enumerate(paths):
        img = torch.nn.functional.avg_pool2d(load_rgb(path)[None], 2)[0]
        means.append(float(lowlight.apply(img, lowlight.sample(np.random.default_rng(i), "medium")).mean()))
    assert 0.05 <= float(np.median(means)) <= 0.15
    lol = [float(load_rgb(p).mean()) for p in sorted((shared_data / "LOL_eval15_lowonly").glob("*.png"))]
    assert min(lol) / 2 < float(np.median(means)) < max(lol) * 2


def test_noise_grows_with_the_preset() -> None:
    flat = torch.full((3, 96, 96), 0.6)
    spread = []
    for preset in ("light", "medium", "heavy"):
        p = lowlight.sample(np.random.default_rng(0), preset, ev=-3.0, gamma=1.0, bits=0, quantize="none")
        spread.append(float(srgb_to_linear(lowlight.apply(flat, p).double()).std()))
    assert spread[0] < spread[1] < spread[2]


def test_quantisation_levels() -> None:
    out = lowlight.apply(torch.rand(3, 32, 32), Params(bits=10, quantize="round"))
    assert torch.equal(out, torch.round(out * 255) / 255)
    lin = srgb_to_linear(lowlight.apply(torch.rand(3, 32, 32), Params(bits=6, quantize="none")).double())
    assert torch.allclose(lin * 63, torch.round(lin * 63), atol=1e-4)
