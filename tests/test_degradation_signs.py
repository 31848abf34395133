"""airtool/degradation_signs.py: low light and blur from image statistics, on made-up pictures
whose answer is known and on the shared benchmark photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from airtool.degradation_signs import (
    BLUR_RATIO,
    detail_ratio,
    halve,
    is_low_light,
    looks_like,
    pooled_luminance,
)


def _texture(h: int = 256, w: int = 320, seed: int = 0) -> np.ndarray:
    """A photo-like picture: smooth blobs plus edges at every scale, values in [0, 1]."""
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w), np.float32)
    for scale in (64, 16, 4):
        coarse = rng.random((h // scale + 2, w // scale + 2)).astype(np.float32)
        out += np.kron(coarse, np.ones((scale, scale), np.float32))[:h, :w] / 3
    return np.repeat(out[..., None], 3, axis=2)


def _box_blur(img: np.ndarray, size: int) -> np.ndarray:
    """Blur along both axes with a box of ``size`` pixels (edge-padded)."""
    pad = size // 2
    out = img
    for axis in (0, 1):
        padded = np.pad(out, [(pad, pad) if a == axis else (0, 0) for a in range(out.ndim)], mode="edge")
        cum = np.cumsum(padded, axis=axis, dtype=np.float64)
        cum = np.concatenate([np.zeros_like(cum.take([0], axis=axis)), cum], axis=axis)
        n = out.shape[axis]
        out = ((cum.take(range(size, size + n), axis=axis) - cum.take(range(n), axis=axis)) / size).astype(np.float32)
    return out


def test_a_sharp_bright_picture_shows_nothing():
    assert looks_like(_texture()) == {}


def test_a_dim_picture_looks_low_light_and_says_how_dark():
    signs = looks_like(_texture() * 0.2)
    assert set(signs) == {"lowlight"} and "mean brightness 0.10" in signs["lowlight"]


def test_a_dark_scene_with_bright_parts_is_not_low_light():
    assert not is_low_light(0.18, 0.7)  # mean below 0.2, but its highlights are bright
    assert is_low_light(0.18, 0.4) and is_low_light(0.12, 0.9)


def test_blur_lowers_the_detail_ratio_below_the_threshold_and_noise_raises_it():
    sharp = _texture()
    blurred = _box_blur(sharp, 9)
    noisy = np.clip(sharp + np.random.default_rng(1).normal(0, 0.1, sharp.shape), 0, 1).astype(np.float32)
    ratios = [detail_ratio(pooled_luminance(x, 1024)) for x in (blurred, sharp, noisy)]
    assert ratios[0] < BLUR_RATIO < ratios[1] < ratios[2]
    assert set(looks_like(blurred)) == {"blur"}


def test_a_flat_or_tiny_picture_shows_nothing():
    assert detail_ratio(np.full((64, 64), 0.5, np.float32)) is None
    assert looks_like(np.full((64, 64, 3), 0.5, np.float32)) == {}
    assert looks_like(_texture(16, 16) * 0.1) == {}  # under MIN_SIDE: too little to tell


def test_uint8_uint16_float_and_grey_pictures_agree():
    picture = _texture() * 0.2
    as_u8 = np.round(picture * 255).astype(np.uint8)
    as_u16 = np.round(picture * 65535).astype(np.uint16)
    grey = picture[..., :1]
    for pixels in (as_u8, as_u16, grey, picture[..., 0]):
        assert set(looks_like(pixels)) == {"lowlight"}
    rgba = np.concatenate([as_u8, np.full(as_u8.shape[:2] + (1,), 255, np.uint8)], axis=2)
    assert pooled_luminance(rgba, 1024).max() < 0.3  # the alpha channel is not brightness


def test_large_pictures_are_averaged_down_to_the_working_side():
    pixels = np.zeros((2100, 900, 3), np.uint8)
    y = pooled_luminance(pixels, 1024)
    assert y.shape == (2100 // 4, 900 // 4) and y.dtype == np.float32
    assert np.allclose(halve(np.arange(16, dtype=np.float32).reshape(4, 4)), [[2.5, 4.5], [10.5, 12.5]])


def _signs(folder: Path) -> list[set[str]]:
    from airtool.io.image import read_image

    return [set(looks_like(read_image(p, native=True).pixels)) for p in sorted(folder.glob("*.png"))]


def test_shared_low_light_and_blur_photos_are_recognised_and_clean_ones_are_not(shared_data):
    lol, gopro = _signs(shared_data / "LOL_eval15_lowonly"), _signs(shared_data / "GoPro_blur_sample")
    assert lol and all("lowlight" in s for s in lol)
    assert gopro and all("blur" in s for s in gopro)
    clean = _signs(shared_data / "CBSD68")[:20]
    assert clean and not any(clean)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_brightness_and_blur_signs_do_not_depend_on_each_other(seed):
    dim = looks_like(_texture(seed=seed) * 0.2)
    blurred = looks_like(_box_blur(_texture(seed=seed), 9))
    assert "blur" not in dim and "lowlight" not in blurred
