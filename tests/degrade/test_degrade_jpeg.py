"""JPEG: Pillow round trip, grey stays grey, artefacts grow as quality falls."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from airtool.degrade import jpeg
from airtool.degrade.jpeg import Params


def test_matches_a_direct_pillow_round_trip(real_crop: torch.Tensor) -> None:
    arr = np.round(real_crop.permute(1, 2, 0).numpy().astype(np.float64) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=25, subsampling="4:2:0")
    expected = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    out = jpeg.apply(real_crop, Params(quality=25))
    assert np.array_equal(np.round(out.permute(1, 2, 0).numpy() * 255).astype(np.uint8), expected)


def test_grey_stays_grey(real_crop: torch.Tensor) -> None:
    grey = real_crop.mean(0, keepdim=True)
    out = jpeg.apply(grey, Params(quality=20))
    assert out.shape == grey.shape and float((out - grey).abs().mean()) > 0


def test_error_falls_as_quality_rises(real_crop: torch.Tensor) -> None:
    errors = [float(((jpeg.apply(real_crop, Params(quality=q)) - real_crop) ** 2).mean()) for q in (10, 30, 60, 90)]
    assert errors == sorted(errors, reverse=True)


def test_output_is_on_8bit_levels_and_batches_work() -> None:
    batch = torch.rand(2, 3, 24, 40)
    out = jpeg.apply(batch, Params(quality=50))
    assert out.shape == batch.shape and torch.equal(out, torch.round(out * 255) / 255)
    assert torch.equal(out[1], jpeg.apply(batch[1], Params(quality=50)))
