"""The shipped weights load from weights/ and restore a real crop above a recorded floor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from airtool.metrics import psnr
from airtool.models.weights import load_model, read_manifest, sha256_of, weights_dir

# Measured when the weights were exported (26.44 dB on this crop); the floor leaves 0.4 dB.
DENOISE_FLOOR_DB = 26.0


def test_manifest_matches_the_shipped_files():
    folder = weights_dir()
    files = read_manifest(folder)["files"]
    assert "symunet-s-aio3.safetensors" in files
    for name, entry in files.items():
        assert (folder / name).stat().st_size <= 60 * 1024 * 1024
        assert sha256_of(folder / name) == entry["sha256"], name
        assert {"config", "data", "steps", "hardware", "wall_time_s", "scores"} <= set(entry)


def test_symunet_s_denoises_a_real_crop_above_the_floor(shared_data):
    model, spec = load_model("symunet-s")
    assert spec.name == "symunet-s"
    clean = np.asarray(Image.open(shared_data / "CBSD68" / "101085.png").convert("RGB"), dtype=np.float32) / 255
    crop = clean[100:228, 100:228]
    noisy = np.clip(crop + np.random.default_rng(0).normal(0, 25 / 255, crop.shape), 0, 1).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(noisy).permute(2, 0, 1)[None]).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    restored, baseline = psnr(out, crop), psnr(noisy, crop)
    assert restored >= DENOISE_FLOOR_DB and restored - baseline > 5.0, (restored, baseline)
