"""Loading the frozen CLIP encoder from local folders, safely and strictly, and its preprocessing."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch

from airtool.errors import AirtoolError, UsageError, WeightsError
from airtool.models.clip_encoder import (
    ClipPreprocess,
    clip_folder,
    load_clip_encoder,
    read_preprocess,
    resolve_clip_path,
)
from tests.conftest import make_tiny_clip, save_hf_clip


def _reference_tokens(clip, pixels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return clip.vision_model(pixel_values=pixels).last_hidden_state


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_hugging_face_folder_loads_and_gives_the_vision_towers_tokens(fmt, tiny_clip, tmp_path):
    folder = save_hf_clip(tiny_clip, tmp_path / fmt, fmt)
    encoder = load_clip_encoder(folder)
    image = torch.rand(2, 3, 40, 61)
    tokens = encoder(image)
    assert tokens.shape == (2, 5, 32) and encoder.hidden_size == 32
    assert torch.allclose(tokens, _reference_tokens(tiny_clip, encoder.preprocess(image)), atol=1e-5)
    assert not any(p.requires_grad for p in encoder.parameters()) and not encoder.train().training


def test_weights_file_path_and_hub_cache_layout_resolve(tiny_clip_dir, tmp_path):
    assert clip_folder(tiny_clip_dir / "model.safetensors") == tiny_clip_dir
    cache = tmp_path / "models--openai--clip-vit-large-patch14"
    shutil.copytree(tiny_clip_dir, cache / "snapshots" / "abc123")
    (cache / "snapshots" / "old").mkdir()
    (cache / "refs").mkdir()
    (cache / "refs" / "main").write_text("abc123\n")
    assert clip_folder(cache) == cache / "snapshots" / "abc123"
    assert load_clip_encoder(cache).hidden_size == 32


def test_vision_only_folder_loads(tiny_clip, tmp_path):
    from transformers import CLIPVisionModel

    vision = CLIPVisionModel(tiny_clip.config.vision_config)
    getattr(vision, "vision_model", vision).load_state_dict(tiny_clip.vision_model.state_dict())  # v4 wraps, v5 not
    vision.save_pretrained(str(tmp_path / "vision"))
    encoder = load_clip_encoder(tmp_path / "vision")
    image = torch.rand(1, 3, 28, 28)
    assert torch.allclose(encoder(image), _reference_tokens(tiny_clip, encoder.preprocess(image)), atol=1e-5)


def test_a_bin_that_would_run_code_is_refused(tiny_clip, tmp_path):
    folder = save_hf_clip(tiny_clip, tmp_path / "evil", "bin")
    torch.save({"weights": tiny_clip.state_dict(), "payload": print}, folder / "pytorch_model.bin")  # a pickled callable
    with pytest.raises(WeightsError) as err:
        load_clip_encoder(folder)
    assert str(err.value).startswith(str(folder)) and "\n" not in str(err.value)


def test_missing_or_wrong_weights_are_one_line_errors(tiny_clip, tiny_clip_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(tiny_clip_dir / "config.json", empty / "config.json")
    with pytest.raises(WeightsError, match="cannot load the CLIP vision weights"):
        load_clip_encoder(empty)
    other = save_hf_clip(make_tiny_clip(), tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    config["vision_config"]["intermediate_size"] = 48  # the file's shapes no longer match
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="wrong shapes|missing keys|do not match"):
        load_clip_encoder(other)
    (other / "config.json").write_text(json.dumps({**config, "model_type": "siglip"}))
    with pytest.raises(WeightsError, match="not CLIP"):
        load_clip_encoder(other)
    with pytest.raises(WeightsError, match="not found"):
        load_clip_encoder(tmp_path / "nowhere")
    with pytest.raises(WeightsError, match="no config.json"):
        load_clip_encoder(empty.parent)


def test_missing_transformers_is_one_line_naming_the_extra(monkeypatch, tiny_clip_dir):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(AirtoolError) as err:
        load_clip_encoder(tiny_clip_dir)
    assert "pip install 'airtool[semantic]'" in str(err.value)


def test_path_comes_from_the_argument_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRTOOL_CLIP", str(tmp_path / "env"))
    assert resolve_clip_path(tmp_path / "arg", "se-symunet") == tmp_path / "arg"
    assert resolve_clip_path(None, "se-symunet") == tmp_path / "env"
    monkeypatch.delenv("AIRTOOL_CLIP")
    with pytest.raises(UsageError, match="--clip PATH"):
        resolve_clip_path(None, "se-symunet")


def test_preprocessing_is_the_authors_resize_crop_normalise():
    prep = ClipPreprocess(shortest_edge=224, crop=224)
    # A landscape picture whose middle third is white: the short side goes to 224, the long side
    # to int(301 * 2.24) = 674, and the centre crop keeps (most of) the middle third only.
    image = torch.zeros(1, 3, 100, 301)
    image[..., 100:201] = 1.0
    out = prep(image)
    white = (1.0 - torch.tensor(prep.mean)) / torch.tensor(prep.std)
    assert out.shape == (1, 3, 224, 224)
    assert torch.allclose(out[0, :, :, 8:-8].mean(dim=(1, 2)), white, atol=0.02)
    portrait = prep(torch.full((2, 3, 500, 250), 0.5))
    grey = (0.5 - torch.tensor(prep.mean)) / torch.tensor(prep.std)
    assert portrait.shape == (2, 3, 224, 224) and torch.allclose(portrait[0, :, 5, 5], grey, atol=1e-5)
    assert prep(torch.rand(1, 3, 1, 1)).shape == (1, 3, 224, 224)  # a one-pixel picture is upsampled


def test_preprocessor_config_both_forms(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": {"shortest_edge": 256}, "crop_size": {
        "height": 224, "width": 224}, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}))
    assert read_preprocess(tmp_path, 224) == ClipPreprocess(256, 224, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": 224, "crop_size": 224}))
    assert read_preprocess(tmp_path, 224) == ClipPreprocess()
    (tmp_path / "preprocessor_config.json").unlink()
    assert read_preprocess(tmp_path, 336) == ClipPreprocess(336, 336)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": 200, "crop_size": 224}))
    with pytest.raises(WeightsError, match="unsupported CLIP preprocessing"):
        read_preprocess(tmp_path, 224)
