"""The shipped weights load from weights/ and restore a real crop above a recorded floor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from airtool.metrics import psnr
from airtool.models.weights import load_model, read_manifest, sha256_of, weights_dir

# Measured when the weights were exported (dB on this crop at sigma 25); each floor leaves 0.4 dB.
DENOISE_FLOOR_DB = {"symunet-s": 26.0, "daair": 27.8, "symunet": 27.9}  # measured 26.44, 28.20 and 28.34


def test_manifest_matches_the_shipped_files():
    folder = weights_dir()
    files = read_manifest(folder)["files"]
    assert {"symunet-s-aio3.safetensors", "daair-aio3.safetensors", "symunet-aio3.safetensors"} <= set(files)
    for name, entry in files.items():
        assert (folder / name).stat().st_size <= 60 * 1024 * 1024
        assert sha256_of(folder / name) == entry["sha256"], name
        assert {"config", "data", "steps", "hardware", "wall_time_s", "scores"} <= set(entry)


@pytest.mark.parametrize("name", sorted(DENOISE_FLOOR_DB))
def test_shipped_weights_denoise_a_real_crop_above_the_floor(shared_data, name):
    model, spec = load_model(name)
    assert spec.name == name
    model.eval()
    clean = np.asarray(Image.open(shared_data / "CBSD68" / "101085.png").convert("RGB"), dtype=np.float32) / 255
    crop = clean[100:228, 100:228]
    noisy = np.clip(crop + np.random.default_rng(0).normal(0, 25 / 255, crop.shape), 0, 1).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(noisy).permute(2, 0, 1)[None]).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    restored, baseline = psnr(out, crop), psnr(noisy, crop)
    assert restored >= DENOISE_FLOOR_DB[name] and restored - baseline > 5.0, (restored, baseline)
