"""Shared fixtures: real data location, tiny weights, image factories."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("AIRTOOL_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = data_root()
    if not (root / "MANIFEST.md").is_file():
        pytest.skip(f"shared benchmark data not found at {root} (set AIRTOOL_DATA)")
    return root


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """The CPU auto tile caches its timings under $XDG_CACHE_HOME: never the user's during tests."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


@pytest.fixture(autouse=True)
def _seed_and_threads():
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)  # tests use tiny models: more threads only add overhead on 2 cores
    yield


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """Random-init tiny SymUNet weights saved the way airtool ships weights."""
    import torch

    from airtool.models import get_spec
    from airtool.models.weights import save_weights

    torch.manual_seed(0)
    model = get_spec("symunet").create("tiny")
    path = tmp_path_factory.mktemp("weights") / "symunet-tiny.safetensors"
    save_weights(model, path, model="symunet", variant="tiny", config={})
    return path


def gradient_image(h: int = 40, w: int = 56, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx / w), (yy / h), ((xx + yy) % 17) / 16][:channels], axis=-1)
    return np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1).astype(np.float32)
