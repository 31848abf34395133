"""PSNR/SSIM per protocol: agreement with scikit-image (test-only dependency), edge cases, the registry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from airtool import metrics as M


def _pair(shape: tuple[int, ...], seed: int = 0, dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """A structured image and a noisy, slightly blurred copy (both in [0, 1])."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.4 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    clean = base[..., None].repeat(shape[2], axis=2) if len(shape) == 3 else base
    clean = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1)
    noisy = np.clip(clean + rng.normal(0, 0.08, clean.shape), 0, 1)
    return noisy.astype(dtype), clean.astype(dtype)


@pytest.fixture(scope="module")
def skm():
    return pytest.importorskip("skimage.metrics", reason="scikit-image (test-only dependency) is not installed")


@pytest.mark.parametrize("shape", [(45, 61, 3), (33, 40), (64, 64, 1)])
def test_psnr_and_uniform_ssim_match_skimage(skm, shape):
    pred, target = _pair(shape)
    axis = -1 if len(shape) == 3 else None
    assert M.psnr(pred, target) == pytest.approx(skm.peak_signal_noise_ratio(target, pred, data_range=1), abs=1e-4)
    expected = skm.structural_similarity(target, pred, data_range=1, channel_axis=axis)
    assert M.ssim(pred, target) == pytest.approx(expected, abs=1e-4)


def test_promptir_score_on_float32_matches_skimage(skm):
    """The papers pass float32 arrays clipped to [0, 1] (skimage then works in float32)."""
    pred, target = _pair((50, 70, 3), seed=3, dtype=np.float32)
    pred = pred * 1.1  # overshoot: the promptir protocol clips
    p, s = M.score(pred, target, M.METRIC_SPECS["promptir"])
    clipped = np.clip(pred, 0, 1)
    assert p == pytest.approx(skm.peak_signal_noise_ratio(target, clipped, data_range=1), abs=1e-4)
    assert s == pytest.approx(skm.structural_similarity(target, clipped, data_range=1, channel_axis=-1), abs=1e-4)


def test_symunet_protocol_does_not_clip(skm):
    pred, target = _pair((40, 40, 3), seed=4)
    pred = pred + 0.05  # some values now exceed 1
    p, _ = M.score(pred, target, M.METRIC_SPECS["symunet"])
    assert p == pytest.approx(skm.peak_signal_noise_ratio(target, pred, data_range=1), abs=1e-4)
    assert p != pytest.approx(M.score(pred, target, M.METRIC_SPECS["promptir"])[0], abs=1e-3)


def test_moce_gaussian_ssim_matches_skimage(skm):
    pred, target = _pair((48, 52, 3), seed=1)
    expected = skm.structural_similarity(target, pred, data_range=1, channel_axis=-1, gaussian_weights=True)
    assert M.score(pred, target, M.METRIC_SPECS["moce"])[1] == pytest.approx(expected, abs=1e-4)


def test_ndr_wang_ssim_on_255_matches_skimage(skm):
    pred, target = _pair((48, 52, 3), seed=2)
    expected = skm.structural_similarity(
        target * 255, pred * 255, data_range=255, channel_axis=-1, gaussian_weights=True, use_sample_covariance=False
    )
    p, s = M.score(pred, target, M.METRIC_SPECS["ndr"])
    assert s == pytest.approx(expected, abs=1e-4)
    assert p == pytest.approx(skm.peak_signal_noise_ratio(target, pred, data_range=1), abs=1e-4)


def test_basicsr_y_matches_independent_formula(skm):
    pred, target = _pair((40, 44, 3), seed=5)

    def y(img: np.ndarray) -> np.ndarray:  # MATLAB rgb2ycbcr on 8-bit levels, Y only
        q = np.round(np.clip(img, 0, 1) * 255.0) / 255.0
        return 16.0 + 65.481 * q[..., 0] + 128.553 * q[..., 1] + 24.966 * q[..., 2]

    spec = M.MetricSpec(**{**M.METRIC_SPECS["basicsr-y"].__dict__, "crop_border": 4})
    ya, yb = y(pred)[4:-4, 4:-4], y(target)[4:-4, 4:-4]
    mse = np.mean((ya - yb) ** 2)
    expected_ssim = skm.structural_similarity(
        yb, ya, data_range=255, gaussian_weights=True, use_sample_covariance=False
    )
    p, s = M.score(pred, target, spec)
    assert p == pytest.approx(10 * math.log10(255.0**2 / mse), abs=1e-4)
    assert s == pytest.approx(expected_ssim, abs=1e-4)


def test_identical_images_give_inf_psnr_and_unit_ssim():
    img, _ = _pair((32, 32, 3))
    assert M.psnr(img, img) == math.inf
    assert M.ssim(img, img) == pytest.approx(1.0)
    assert M.score(img, img, M.METRIC_SPECS["promptir"])[0] == math.inf


def test_shape_mismatch_and_small_images_raise():
    a, b = _pair((32, 32, 3))
    with pytest.raises(ValueError, match="shape mismatch"):
        M.psnr(a, b[:, :31])
    with pytest.raises(ValueError, match="shape mismatch"):
        M.score(a, b[:31], M.METRIC_SPECS["promptir"])
    with pytest.raises(ValueError, match="smaller than"):
        M.ssim(a[:6, :6], b[:6, :6])
    with pytest.raises(ValueError, match="smaller than"):
        M.ssim(a[:10, :10], b[:10, :10], gaussian=True)
    with pytest.raises(ValueError, match="odd"):
        M.ssim(a, b, win_size=8)


def test_center_crop_to_multiple_is_the_papers_crop():
    img = np.arange(321 * 481).reshape(321, 481)
    out = M.center_crop_to_multiple(img, 16)
    assert out.shape == (320, 480)
    assert out[0, 0] == 0  # one spare row/column: the top-left 480x320 (PromptIR's crop_img)
    assert M.center_crop_to_multiple(np.zeros((413, 550)), 16).shape == (400, 544)
    assert M.crop_border(np.zeros((10, 12)), 2).shape == (6, 8)


def test_gaussian_taps_are_scipy_compatible():
    taps = M.gaussian_kernel1d(1.5, 3.5)
    assert len(taps) == 11 and taps.sum() == pytest.approx(1.0)
    assert taps[5] == taps.max() and np.allclose(taps, taps[::-1])


# -- the metric registry ----------------------------------------------------------------------


def _noisier(img: np.ndarray, sigma: float, seed: int = 7) -> np.ndarray:
    return np.clip(img + np.random.default_rng(seed).normal(0, sigma, img.shape), 0, 1)


def _better_or_equal(metric: M.Metric, a: float, b: float) -> bool:
    return a >= b if metric.higher_is_better else a <= b


@pytest.mark.parametrize("protocol", list(M.METRIC_SPECS))
@pytest.mark.parametrize("name", list(M.METRICS))
def test_registered_metric_identical_images_score_best(name, protocol):
    metric = M.METRICS[name]
    _, clean = _pair((40, 44, 3), seed=8)
    spec = M.METRIC_SPECS[protocol]
    best = M.score_all(clean, clean, spec)[name]
    for sigma in (0.02, 0.1):
        assert _better_or_equal(metric, best, M.score_all(_noisier(clean, sigma), clean, spec)[name])
    if name == "psnr":
        assert best == math.inf
    if name == "ssim":
        assert best == pytest.approx(1.0)


@pytest.mark.parametrize("protocol", list(M.METRIC_SPECS))
@pytest.mark.parametrize("name", list(M.METRICS))
def test_registered_metric_noisier_image_scores_worse(name, protocol):
    metric = M.METRICS[name]
    _, clean = _pair((40, 44, 3), seed=9)
    spec = M.METRIC_SPECS[protocol]
    slight = M.score_all(_noisier(clean, 0.02), clean, spec)[name]
    heavy = M.score_all(_noisier(clean, 0.15), clean, spec)[name]
    assert slight != heavy and _better_or_equal(metric, slight, heavy)


def test_registry_entries_are_named_by_their_key():
    assert {"psnr", "ssim"} <= set(M.METRICS)
    for name, metric in M.METRICS.items():
        assert metric.name == name


def test_score_is_psnr_and_ssim_of_score_all():
    pred, target = _pair((40, 44, 3), seed=10)
    for spec in M.METRIC_SPECS.values():
        values = M.score_all(pred, target, spec)
        assert M.score(pred, target, spec) == (values["psnr"], values["ssim"])


def test_a_registered_third_metric_appears_in_every_protocol(monkeypatch):
    def mae(a: np.ndarray, b: np.ndarray, spec: M.MetricSpec) -> float:
        return float(np.mean(np.abs(a - b)))

    monkeypatch.setitem(M.METRICS, "mae", M.Metric("mae", mae, higher_is_better=False))
    pred, target = _pair((40, 44, 3), seed=11)
    for protocol, spec in M.METRIC_SPECS.items():
        values = M.score_all(pred, target, spec)
        assert set(values) == {"psnr", "ssim", "mae"}, protocol
        assert values["mae"] > 0
        assert M.score_all(target, target, spec)["mae"] == 0.0
        assert M.score(pred, target, spec) == (values["psnr"], values["ssim"])
    # the protocol's preparation applies: basicsr-y scores 8-bit luma on the 0-255 scale
    assert M.score_all(pred, target, M.METRIC_SPECS["basicsr-y"])["mae"] > 1.0
    assert M.score_all(pred, target, M.METRIC_SPECS["promptir"])["mae"] < 1.0
