"""Gaussian / Poisson noise statistics and the AirNet/PromptIR uint8 protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from airtool.degrade import noise
from airtool.degrade.noise import Params


@pytest.mark.parametrize("quantize", ["round", "none"])
@pytest.mark.parametrize("sigma", [5.0, 15.0, 25.0, 50.0])
def test_measured_sigma_within_3_percent(quantize: str, sigma: float) -> None:
    # Flat grey 0.5, 3x256x256. Measured (seed 1): -0.1..-0.3 % for sigma <= 25 in both modes;
    # -1.3 % at sigma 50, where clipping at 0 and 1 (2.55 sigma away) trims the tails.
    flat = torch.full((3, 256, 256), 0.5)
    out = noise.apply(flat, Params(sigma=sigma, quantize=quantize, seed=1))
    measured = float((out - flat).double().std()) * 255.0
    assert abs(measured / sigma - 1.0) < 0.03


def test_round_gives_8bit_levels_and_none_does_not() -> None:
    flat = torch.full((3, 64, 64), 0.5)
    rounded = noise.apply(flat, Params(sigma=10, quantize="round"))
    assert torch.equal(rounded, torch.round(rounded * 255) / 255)
    raw = noise.apply(flat, Params(sigma=10, quantize="none"))
    assert not torch.equal(raw, torch.round(raw * 255) / 255)


def test_gray_noise_is_shared_across_channels() -> None:
    flat = torch.full((2, 3, 32, 32), 0.5)
    out = noise.apply(flat, Params(sigma=20, gray=True))
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    colour = noise.apply(flat, Params(sigma=20))
    assert not torch.equal(colour[:, 0], colour[:, 1])


def test_poisson_variance_is_signal_over_peak() -> None:
    # Poisson(x * peak) / peak has variance x / peak: 0.5 / 100 -> std 0.0707.
    flat = torch.full((3, 128, 128), 0.5)
    out = noise.apply(flat, Params(sigma=0, poisson=100.0, quantize="none"))
    assert abs(float(out.double().std()) / np.sqrt(0.5 / 100) - 1.0) < 0.03
    assert abs(float(out.mean()) - 0.5) < 0.002


def test_zero_sigma_round_is_identity_on_8bit_images() -> None:
    img = torch.round(torch.rand(3, 16, 16) * 255) / 255
    assert torch.equal(noise.apply(img, Params(sigma=0)), img)


# ------------------------------------------------------------------ PromptIR protocol


def test_promptir_truncation_bias_at_sigma25() -> None:
    # uint8 truncation floors the noisy value: E[noisy - clean] = -0.5 level (clipping is
    # negligible at 128 +- 5 sigma). 3x1024x1024 samples: the mean's std is 25/sqrt(3.1M) =
    # 0.014 levels, so +-0.06 level is a 4-sigma tolerance. Rounding would give 0.
    clean = torch.full((3, 1024, 1024), 128 / 255)
    out = noise.apply(clean, Params(sigma=25, protocol="promptir", seed=0))
    bias = float((out.double() - clean.double()).mean()) * 255
    assert abs(bias + 0.5) < 0.06
    rounded = noise.apply(clean, Params(sigma=25, seed=0))
    assert abs(float((rounded.double() - clean.double()).mean()) * 255) < 0.06


def test_promptir_matches_the_papers_code_with_global_seed(real_crop: torch.Tensor) -> None:
    clean = np.round(real_crop.permute(1, 2, 0).numpy().astype(np.float64) * 255).astype(np.uint8)
    saved = np.random.get_state()
    try:
        # The papers' DenoiseTestDataset: np.random.seed(0) once, then per image
        # np.clip(clean + np.random.randn(*clean.shape) * sigma, 0, 255).astype(np.uint8).
        np.random.seed(0)
        expected = np.clip(clean + np.random.randn(*clean.shape) * 25, 0, 255).astype(np.uint8)
    finally:
        np.random.set_state(saved)
    out = noise.apply(real_crop, Params(sigma=25, protocol="promptir", seed=0))
    got = np.round(out.permute(1, 2, 0).numpy().astype(np.float64) * 255).astype(np.uint8)
    assert np.array_equal(got, expected)
    # Known first draws of RandomState(0): randn -> 1.764052..., so pixel 0 gets +44.1 levels.
    assert int(got[0, 0, 0]) == int(np.clip(clean[0, 0, 0] + 1.764052345967664 * 25, 0, 255))


def test_promptir_noise_is_the_papers_formula_and_the_stream_runs_on() -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (16, 32, 3), dtype=np.uint8), rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)]
    state, papers = np.random.RandomState(0), np.random.RandomState(0)
    for sigma in (15, 25, 50):  # the papers' order: sigma loops outside, files inside, one stream
        for img in images:
            got = noise.promptir_noise(img, sigma, state)
            expected = np.clip(img + papers.randn(*img.shape) * sigma, 0, 255).astype(np.uint8)
            assert got.dtype == np.float32 and got.shape == img.shape
            assert np.array_equal(got, expected.astype(np.float32) / np.float32(255))
    # Floats on the 8-bit levels (what evaluate reads) give exactly what their uint8 levels give.
    as_float = images[0].astype(np.float32) / np.float32(255)
    assert np.array_equal(noise.promptir_noise(as_float, 25, np.random.RandomState(4)),
                          noise.promptir_noise(images[0], 25, np.random.RandomState(4)))


def test_promptir_batch_continues_the_stream() -> None:
    batch = torch.full((2, 3, 8, 8), 0.5)
    out = noise.apply(batch, Params(sigma=25, protocol="promptir", seed=3))
    state = np.random.RandomState(3)
    clean = np.full((8, 8, 3), 128, dtype=np.uint8)
    for b in range(2):
        expected = noise.promptir_noise(clean, 25, state)
        assert np.array_equal(out[b].permute(1, 2, 0).numpy(), expected)
    assert not torch.equal(out[0], out[1])


def test_promptir_rejects_gray_and_poisson() -> None:
    with pytest.raises(ValueError, match="promptir"):
        noise.apply(torch.zeros(3, 8, 8), Params(protocol="promptir", gray=True))
