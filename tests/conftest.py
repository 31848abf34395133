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


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    """The bundled ffmpeg binary; the test is skipped without the video extra."""
    try:
        import imageio_ffmpeg
    except ImportError:
        pytest.skip("video tests need the video extra: pip install 'airtool[video]'")
    return imageio_ffmpeg.get_ffmpeg_exe()


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


# A tiny random CLIP (vision hidden size 32, 28 px input, 5 tokens) for SE-SymUNet's tests; the
# "tiny" se-symunet variant expects this hidden size. Real CLIP weights are never needed.
TINY_CLIP_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                    "image_size": 28, "patch_size": 14}
TINY_CLIP_TEXT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                  "vocab_size": 99, "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}


def make_tiny_clip(seed: int = 0):
    """A full random ``CLIPModel`` (text tower included, as in openai/clip-vit-large-patch14)."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(text_config=TINY_CLIP_TEXT, vision_config=TINY_CLIP_VISION, projection_dim=16)
    return CLIPModel(config).eval()


def save_hf_clip(model, folder: Path, fmt: str = "safetensors") -> Path:
    """Write ``model`` as a Hugging Face folder: config.json, weights, preprocessor_config.json."""
    import json

    import torch

    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        model.save_pretrained(str(folder))  # config.json + model.safetensors, as the hub has them
    else:
        model.config.to_json_file(str(folder / "config.json"))
        torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "pytorch_model.bin")
    size = model.config.vision_config.image_size
    preprocess = {"size": size, "crop_size": size, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                  "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
                  "resample": 3}  # the legacy int form openai/clip-vit-large-patch14 ships
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocess))
    return folder


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    return make_tiny_clip()


@pytest.fixture(scope="session")
def tiny_clip_dir(tiny_clip, tmp_path_factory) -> Path:
    return save_hf_clip(tiny_clip, tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture(scope="session")
def tiny_se_weights(tmp_path_factory) -> Path:
    """Random-init tiny SE-SymUNet weights (for the tiny CLIP), saved the way airtool ships weights."""
    import torch

    from airtool.models import get_spec
    from airtool.models.weights import save_weights

    torch.manual_seed(0)
    model = get_spec("se-symunet").create("tiny")
    path = tmp_path_factory.mktemp("weights") / "se-symunet-tiny.safetensors"
    save_weights(model, path, model="se-symunet", variant="tiny", config={})
    return path
