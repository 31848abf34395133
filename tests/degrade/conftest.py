"""Fixtures for the degradation tests: real image crops from ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(autouse=True)
def _one_thread():
    """The ops are small; one thread avoids OpenMP spin-waiting on a shared, busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def load_rgb(path: Path) -> torch.Tensor:
    """(3, H, W) float32 in [0, 1]."""
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


@pytest.fixture(scope="session")
def real_image(shared_data: Path) -> torch.Tensor:
    """A whole CBSD68 photo (harbour, mountains and sky: 321x481)."""
    return load_rgb(shared_data / "CBSD68" / "219090.png")


@pytest.fixture(scope="session")
def real_crop(real_image: torch.Tensor) -> torch.Tensor:
    """A 128x128 textured crop of that photo (boats and houses)."""
    return real_image[:, 160:288, 0:128].contiguous()


@pytest.fixture(scope="session")
def real_small(real_image: torch.Tensor) -> torch.Tensor:
    """The photo at half size (160x240), for tests that loop over many parameters."""
    return torch.nn.functional.avg_pool2d(real_image[None], 2)[0].contiguous()
