"""Haze: the scattering model, depth proxies, and calibration against real SOTS pairs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from airtool.degrade import haze
from airtool.degrade.haze import Params, depth_map
from airtool.errors import UsageError
from tests.degrade.conftest import load_rgb


@pytest.mark.parametrize("depth", ["auto", "linear", "radial", "uniform"])
def test_contrast_falls_and_mean_rises_with_beta(real_small: torch.Tensor, depth: str) -> None:
    # The photo's mean (0.39) is below A = 0.9, so more haze must brighten it.
    stats = []
    for beta in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8):
        out = haze.apply(real_small, Params(beta=beta, A=0.9, depth=depth))
        stats.append((float(out.mean()), float(out.std())))
    means, stds = zip(*stats, strict=True)
    assert all(a < b for a, b in zip(means, means[1:], strict=False)), means
    assert all(a > b for a, b in zip(stds, stds[1:], strict=False)), stds
    assert stds[-1] < 0.5 * stds[0]


def test_uniform_depth_is_the_closed_form() -> None:
    img = torch.rand(3, 20, 30)
    p = Params(beta=0.3, A=0.85, depth="uniform", near=2.0, far=4.0)
    t = math.exp(-0.3 * 3.0)
    assert torch.allclose(haze.apply(img, p), img * t + 0.85 * (1 - t), atol=1e-6)


def test_beta_zero_is_identity() -> None:
    img = torch.rand(2, 3, 16, 16)
    assert torch.allclose(haze.apply(img, Params(beta=0.0)), img, atol=1e-7)


def test_depth_proxies_point_the_right_way() -> None:
    x = torch.rand(1, 3, 40, 60)
    lin = depth_map(x, "linear")[0, 0]
    assert float(lin[0].mean()) == 1.0 and float(lin[-1].mean()) == 0.0  # top far
    rad = depth_map(x, "radial")[0, 0]
    assert float(rad[20, 30]) > 0.95 and float(rad[0, 0]) < 0.05  # centre far
    for source in ("auto", "linear", "radial", "uniform"):
        n = depth_map(x, source)
        assert n.shape == (1, 1, 40, 60) and float(n.min()) >= 0 and float(n.max()) <= 1


def test_auto_depth_puts_the_sky_far(real_image: torch.Tensor) -> None:
    n = depth_map(real_image[None], "auto")[0, 0]
    sky, quay = float(n[:40].mean()), float(n[-60:].mean())  # top rows: sky; bottom: quay/water
    assert sky > 0.8 and quay < 0.4


def test_depth_file_matches_the_equivalent_proxy(tmp_path: Path) -> None:
    ramp = np.linspace(255, 0, 48).round().astype(np.uint8)[:, None].repeat(64, axis=1)  # bright top = far
    path = tmp_path / "depth.png"
    Image.fromarray(ramp).save(path)
    img = torch.rand(3, 48, 64)
    from_file = haze.apply(img, Params(beta=0.3, depth=str(path)))
    from_proxy = haze.apply(img, Params(beta=0.3, depth="linear"))
    assert float((from_file - from_proxy).abs().max()) < 0.01  # 8-bit ramp vs exact linspace
    resized = haze.apply(torch.rand(3, 24, 32), Params(beta=0.3, depth=f"map:{path}"))
    assert resized.shape == (3, 24, 32)


def test_missing_depth_file_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="neither"):
        haze.apply(torch.rand(3, 8, 8), Params(depth="/no/such/depth.png"))


def test_matches_real_sots_pairs_given_their_a_and_beta(shared_data: Path) -> None:
    # SOTS file names encode (A, beta): 0001_0.8_0.2.jpg. Applying our model to the clear image
    # with those numbers and the auto depth must come close to the real hazy image. Measured:
    # mean |ours - real| 0.014-0.032 per pair (JPEG input, unknown true depth).
    names = {}
    with open(shared_data / "sources.tsv") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if row[0].startswith("SOTS_outdoor_mini/input/"):
                names[row[0]] = Path(row[3]).stem
    assert len(names) == 5
    for rel, original in names.items():
        a, beta = (float(v) for v in original.split("_")[1:3])
        hazy = load_rgb(shared_data / rel)
        clear = load_rgb(shared_data / rel.replace("input", "target").replace(".jpg", ".png"))
        ours = haze.apply(clear, Params(beta=beta, A=a, depth="auto"))
        assert float((ours - hazy).abs().mean()) < 0.04, rel
        assert abs(float(ours.mean()) - float(hazy.mean())) < 0.04, rel


def test_transmission_shape_and_range() -> None:
    t = haze.transmission(torch.rand(3, 10, 12), Params(beta=0.2))
    assert t.shape == (1, 10, 12) and float(t.max()) <= math.exp(-0.2 * 2.0) + 1e-6


@pytest.mark.parametrize("r", [1, 4, 30])
def test_running_sum_box_equals_average_pooling(r):
    """The guided filter's box mean by running sums equals edge-replicated average pooling."""
    import torch.nn.functional as F

    x = torch.rand(1, 1, 37, 52, generator=torch.Generator().manual_seed(r))
    pooled = haze._separable(F.avg_pool2d, x, r)
    assert torch.allclose(haze._box(x, r), pooled, atol=1e-6) and haze._box(x, r).dtype == x.dtype


def test_a_list_of_presets_samples_their_union():
    """Training sources name [light, medium]: RESIDE OTS's beta 0.04-0.2, never the heavy fog."""
    rng = np.random.default_rng(0)
    betas = [haze.sample(rng, preset=("light", "medium")).beta for _ in range(400)]
    assert 0.04 <= min(betas) < 0.06 and 0.18 < max(betas) <= 0.2
    assert haze.sample(np.random.default_rng(1), preset=("medium",)) == haze.sample(np.random.default_rng(1), preset="medium")
    with pytest.raises(UsageError, match="unknown preset 'fog'"):
        haze.sample(rng, preset=("light", "fog"))
