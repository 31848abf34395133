"""Blur kernels: normalisation, geometry, and the effect on a real image."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from airtool.degrade import blur
from airtool.degrade.base import PRESETS, line_kernel
from airtool.degrade.blur import Params, build_kernel, disk_kernel


def gradient_energy(img: torch.Tensor) -> float:
    """Mean squared forward difference (both directions) of a (C, H, W) image."""
    dx = img[..., :, 1:] - img[..., :, :-1]
    dy = img[..., 1:, :] - img[..., :-1, :]
    return float((dx**2).mean() + (dy**2).mean())


def principal_angle(k: torch.Tensor) -> float:
    """Orientation (degrees counter-clockwise from +x, y up) of a kernel's second moments."""
    h, w = k.shape
    yy, xx = torch.meshgrid(torch.arange(h) - h // 2, torch.arange(w) - w // 2, indexing="ij")
    x, y = xx.double(), -yy.double()
    sxx, syy, sxy = float((k * x * x).sum()), float((k * y * y).sum()), float((k * x * y).sum())
    return 0.5 * math.degrees(math.atan2(2 * sxy, sxx - syy))


@pytest.mark.parametrize("kind", blur.KINDS)
@pytest.mark.parametrize("preset", PRESETS)
def test_kernels_sum_to_one_and_lower_gradient_energy(kind: str, preset: str, real_crop: torch.Tensor) -> None:
    base = gradient_energy(real_crop)
    for seed in range(4):
        params = blur.sample(np.random.default_rng(seed), preset, kind=kind)
        k = torch.tensor(params.kernel, dtype=torch.float64)
        assert abs(float(k.sum()) - 1.0) < 1e-6
        assert float(k.min()) >= 0.0 and k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
        assert gradient_energy(blur.apply(real_crop, params)) < base


def test_heavier_presets_blur_more(real_crop: torch.Tensor) -> None:
    for kind in blur.KINDS:
        energy = [
            np.mean([gradient_energy(blur.apply(real_crop, blur.sample(np.random.default_rng(s), p, kind=kind)))
                     for s in range(4)])
            for p in PRESETS
        ]
        assert energy[0] > energy[1] > energy[2], kind


@pytest.mark.parametrize("angle", [0.0, 30.0, 45.0, 90.0, 135.0, 160.0])
def test_motion_kernel_direction_and_length(angle: float) -> None:
    k = line_kernel(15, angle, 1.0)
    measured = principal_angle(k) % 180.0
    assert min(abs(measured - angle), 180 - abs(measured - angle)) < 1.0
    # Anti-aliased box of length L along the line: variance along it is about (L^2 - 1) / 12.
    h, w = k.shape
    yy, xx = torch.meshgrid(torch.arange(h) - h // 2, torch.arange(w) - w // 2, indexing="ij")
    along = xx * math.cos(math.radians(angle)) - yy * math.sin(math.radians(angle))
    var = float((k * along.double() ** 2).sum())
    assert abs(var / ((15**2 - 1) / 12) - 1) < 0.1


def test_defocus_disk_is_round_with_the_right_area() -> None:
    k = disk_kernel(4.0)
    assert torch.allclose(k, k.T) and torch.allclose(k, k.flip(0)) and torch.allclose(k, k.flip(1))
    # Coverage-weighted area of the pillbox equals pi r^2 (to supersampling accuracy).
    assert abs(float((k / k.max()).sum()) / (math.pi * 16) - 1) < 0.02


def test_gauss_kernel_variance() -> None:
    k = build_kernel(Params(kind="gauss", sigma=2.0))
    h, _ = k.shape
    r = (torch.arange(h) - h // 2).double()
    assert abs(float((k.sum(1) * r**2).sum()) / 4.0 - 1) < 0.02


def test_shake_kernel_depends_only_on_its_seed() -> None:
    a = build_kernel(Params(kind="shake", length=20, anxiety=0.005, seed=3))
    b = build_kernel(Params(kind="shake", length=20, anxiety=0.005, seed=3))
    c = build_kernel(Params(kind="shake", length=20, anxiety=0.005, seed=4))
    assert torch.equal(a, b) and not (a.shape == c.shape and torch.equal(a, c))
    # The trajectory's extent is bounded by its path length.
    assert max(a.shape) <= 20 + 5


def test_stored_kernel_is_what_apply_uses() -> None:
    img = torch.rand(3, 40, 40)
    params = blur.sample(np.random.default_rng(0), "medium", kind="shake")
    rebuilt = dataclasses.replace(params, kernel=None)
    assert torch.allclose(blur.apply(img, params), blur.apply(img, rebuilt), atol=1e-6)
    identity = Params(kind="gauss", sigma=1.0, kernel=[[1.0]])
    assert torch.equal(blur.apply(img, identity), img)


def test_reflect_padding_keeps_flat_images_flat() -> None:
    flat = torch.full((1, 3, 30, 30), 0.4)
    for kind in blur.KINDS:
        out = blur.apply(flat, blur.sample(np.random.default_rng(1), "heavy", kind=kind))
        assert float((out - 0.4).abs().max()) < 1e-6


def test_kernel_larger_than_image_falls_back_to_replicate() -> None:
    tiny = torch.rand(3, 6, 6)
    out = blur.apply(tiny, Params(kind="motion", length=31, angle=10))
    assert out.shape == tiny.shape
