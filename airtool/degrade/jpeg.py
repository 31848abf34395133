"""JPEG compression artefacts: a Pillow encode/decode round trip.

The image is rounded to uint8, encoded at ``quality`` with ``subsampling`` (Pillow's standard
tables; 4:2:0 as most cameras and web encoders) and decoded again. 1-channel images are
encoded as greyscale JPEG ("L"), so grey stays grey.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from airtool.degrade.base import (
    IntRange,
    KeySpec,
    as_batch,
    from_uint8_hwc,
    sample_params,
    to_uint8_hwc,
)

NAME = "jpeg"


@dataclass(frozen=True)
class Params:
    """JPEG parameters: Pillow ``quality`` (1-100) and chroma ``subsampling``."""

    quality: int = 30
    subsampling: str = "4:2:0"


KEYS: dict[str, KeySpec] = {
    "quality": KeySpec("int", 1, 100, help="Pillow JPEG quality"),
    "subsampling": KeySpec("choice", choices=("4:2:0", "4:2:2", "4:4:4"), help="chroma subsampling"),
}

PRESETS: dict[str, dict[str, Any]] = {
    "light": {"quality": IntRange(60, 90)},
    "medium": {"quality": IntRange(30, 60)},
    "heavy": {"quality": IntRange(10, 30)},
}


def sample(rng: np.random.Generator, preset: str | None = None, **fixed: Any) -> Params:
    """Random JPEG params from ``preset`` (None: any preset); ``fixed`` keys override."""
    return sample_params(sys.modules[__name__], rng, preset, fixed, seeded=False)


def apply(img: Tensor, params: Params, rng: np.random.Generator | None = None) -> Tensor:
    """JPEG round trip of ``img`` ((C,H,W) or (B,C,H,W) float in [0,1]); same shape/dtype.

    Deterministic: ``rng`` is accepted for interface symmetry and not used.
    """
    x, restore = as_batch(img)
    return restore(torch.stack([from_uint8_hwc(jpeg_roundtrip(to_uint8_hwc(im), params), im) for im in x]))


def jpeg_roundtrip(arr: np.ndarray, params: Params) -> np.ndarray:
    """Encode/decode a uint8 (H, W, 1 or 3) array; returns the same shape."""
    grey = arr.shape[2] == 1
    im = Image.fromarray(np.ascontiguousarray(arr[:, :, 0] if grey else arr))  # "L" or "RGB"
    buf = io.BytesIO()
    kwargs = {} if grey else {"subsampling": params.subsampling}
    im.save(buf, format="JPEG", quality=params.quality, **kwargs)
    buf.seek(0)
    with Image.open(buf) as dec:
        out = np.asarray(dec.convert("L" if grey else "RGB"))
    return out[:, :, None] if grey else out
