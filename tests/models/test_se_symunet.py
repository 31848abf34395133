"""SE-SymUNet: exact size, the authors' key layout and pixels, the frozen CLIP, tiling with a shared context."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from airtool.errors import UsageError, WeightsError
from airtool.models import get_spec
from airtool.models.clip_encoder import clip_encoder_from_config, load_clip_encoder
from airtool.models.weights import load_model, read_state_dict
from tests.conftest import TINY_CLIP_VISION, gradient_image
from tests.reference.se_symunet_reference import ReferenceSESymUNet

# openai/clip-vit-large-patch14's vision tower (its config.json).
VIT_L14 = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
           "image_size": 224, "patch_size": 14, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}
TINY_REF = {"width": 8, "enc": (1, 1, 1), "middle": 1, "dec": (1, 1, 1), "middle_heads": 2, "text_dim": 32,
            "inner_dims": (16, 16, 16), "middle_inner": 16}


def vit_l14_vision_params() -> int:
    """ViT-L/14 vision tower, counted by hand: embeddings, pre-LN, 24 blocks, post-LN."""
    d, mlp, tokens = 1024, 4096, (224 // 14) ** 2 + 1
    embeddings = d + 3 * 14 * 14 * d + tokens * d
    block = 4 * (d * d + d) + 2 * 2 * d + (d * mlp + mlp) + (mlp * d + d)
    return embeddings + 2 * d + 24 * block + 2 * d


def tiny_model(tiny_clip_dir, seed: int = 0):
    torch.manual_seed(seed)
    model = get_spec("se-symunet").create("tiny")
    model.attach_clip(load_clip_encoder(tiny_clip_dir))
    return model.eval()


def test_paper_trainable_count_with_a_real_vit_l14_shaped_clip():
    spec = get_spec("se-symunet")
    with torch.device("meta"):
        model = spec.create("paper")
        clip = clip_encoder_from_config(VIT_L14)
    model.attach_clip(clip)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == sum(p.numel() for p in model.parameters()) == 67_432_643 == spec.params
    assert sum(p.numel() for p in clip.parameters()) == vit_l14_vision_params() == 303_179_776
    assert not any(p.requires_grad for p in clip.parameters())
    clip_ids = {id(p) for p in clip.parameters()}
    assert not clip_ids & {id(p) for p in model.parameters()}
    assert not any(k.startswith(("vision", "clip", "_clip")) for k in model.state_dict())
    assert model.clip is clip and model.size_multiple == 32


def test_key_names_match_the_authors():
    with torch.device("meta"):
        keys = set(get_spec("se-symunet").create("paper").state_dict())
        assert keys == set(ReferenceSESymUNet().state_dict())
    for key in ("middle_guide_attention.alpha", "middle_guide_attention.attention.to_q.weight",
                "middle_refine_attention.attention.norm_context.bias", "decoder_guide_attentions.0.attention.to_out.0.bias",
                "decoder_refine_attentions.2.attention.to_v.weight", "decoders.2.3.attn.temperature", "ups.2.0.weight"):
        assert key in keys


def _authors_checkpoint(tmp_path, tiny_clip):
    """A tiny SE-SymUNet state dict as the authors' BasicSR code writes it: {"params": ...}, the
    whole CLIPModel under clip_model.*, and (when trained on a CPU) a stray pos_embed."""
    torch.manual_seed(1)
    ref = ReferenceSESymUNet(**TINY_REF).eval()
    for name, p in ref.named_parameters():  # off the init values, alphas large enough to matter
        p.data.add_(torch.randn_like(p) * 0.02)
        if name.endswith("alpha"):
            p.data.fill_(0.5)
    state = dict(ref.state_dict())
    state.update({f"clip_model.{k}": v for k, v in tiny_clip.state_dict().items()})
    state["middle_guide_attention.pos_embed"] = torch.randn(1, 4, 8 * 8 * 4)
    path = tmp_path / "net_g_latest.pth"
    torch.save({"params": state}, path)
    return ref, path


def test_authors_checkpoint_loads_and_gives_their_pixels(tmp_path, tiny_clip, tiny_clip_dir):
    ref, path = _authors_checkpoint(tmp_path, tiny_clip)
    ours, _ = load_model("se-symunet", path, variant="tiny", clip=tiny_clip_dir)
    x = torch.rand(1, 3, 45, 70)
    with torch.no_grad():
        z = ours.image_context(x)

        def positions(name, rows, cols):  # the same positional draw for both (the authors' is torch.randn)
            return ours.get_submodule(name).positions(rows, cols, [(0, 0)], x.device)

        expected = ref(x, z, positions)
        assert (ours(x) - expected).abs().max() < 1e-5
        assert (ours(x) - x).abs().max() > 0.05  # the check is not trivially about the input


def test_a_checkpoint_trained_with_another_clip_is_refused(tmp_path, tiny_clip, tiny_clip_dir):
    _, path = _authors_checkpoint(tmp_path, tiny_clip)
    state, _ = read_state_dict(path)
    state["clip_model.vision_model.embeddings.patch_embedding.weight"] += 0.1
    torch.save({"params": state}, path)
    with pytest.raises(WeightsError, match="different CLIP"):
        load_model("se-symunet", path, variant="tiny", clip=tiny_clip_dir)


def test_strict_load_names_missing_and_unexpected_keys(tmp_path, tiny_clip_dir):
    state = get_spec("se-symunet").create("tiny").state_dict()
    del state["decoder_refine_attentions.1.alpha"]
    state["decoder_guide_attentions.0.extra"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as err:
        load_model("se-symunet", path, variant="tiny", clip=tiny_clip_dir)
    assert "missing keys: decoder_refine_attentions.1.alpha" in str(err.value)
    assert "unexpected keys: decoder_guide_attentions.0.extra" in str(err.value)


def test_without_a_clip_path_it_fails_first_and_says_what_to_pass(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRTOOL_CLIP", raising=False)
    with pytest.raises(UsageError) as err:
        load_model("se-symunet", tmp_path / "does-not-exist.safetensors")  # the weights are not even looked at
    message = str(err.value)
    assert "--clip PATH" in message and "AIRTOOL_CLIP" in message and "\n" not in message
    with pytest.raises(UsageError, match="--clip"):
        get_spec("se-symunet").create("tiny")(torch.rand(1, 3, 8, 8))  # built by hand, never given a CLIP


def test_airtool_clip_environment_variable_is_used(monkeypatch, tmp_path, tiny_clip_dir):
    from airtool.models.weights import save_weights

    path = tmp_path / "w.safetensors"
    save_weights(get_spec("se-symunet").create("tiny"), path, model="se-symunet", variant="tiny", config={})
    monkeypatch.setenv("AIRTOOL_CLIP", str(tiny_clip_dir))
    model, _ = load_model("se-symunet", path)
    assert model.clip is not None and model.clip.source == str(tiny_clip_dir)


def test_odd_sizes_keep_shape(tiny_clip_dir):
    model = tiny_model(tiny_clip_dir)
    for h, w in [(1, 1), (5, 3), (37, 53), (33, 64), (200, 7)]:
        with torch.no_grad():
            y = model(torch.rand(1, 3, h, w))
        assert y.shape == (1, 3, h, w) and torch.isfinite(y).all()


def test_clip_is_frozen_and_left_out_of_optimiser_gradients_ema_and_export(tmp_path, tiny_clip_dir):
    from safetensors import safe_open

    from airtool.engine.training.train import Ema, OptimConfig, build_optimizer
    from airtool.models.weights import save_weights

    model = tiny_model(tiny_clip_dir).train()
    clip = model.clip
    assert not clip.training  # train() on the network leaves the frozen encoder in eval mode
    optimizer = build_optimizer(OptimConfig(), model.parameters())
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in model.parameters()}
    assert not in_optimizer & {id(p) for p in clip.parameters()}
    restored, _ = model.forward_train(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    restored.mean().backward()
    assert all(p.grad is None for p in clip.parameters())
    assert model.middle_guide_attention.alpha.grad is not None and model.decoder_refine_attentions[1].alpha.grad is not None
    assert model.decoder_refine_attentions[2].alpha.grad is None  # its z is never read, as in the authors' code
    assert set(Ema(model, 0.999).state) == set(model.state_dict())
    path = tmp_path / "export.safetensors"
    save_weights(model, path, model="se-symunet", variant="tiny", config={})
    with safe_open(str(path), framework="pt") as fh:
        keys = set(fh.keys())
    assert keys == set(model.state_dict()) and not any("vision" in k or "embeddings" in k for k in keys)
    twin = copy.deepcopy(model, {id(m): m for m in model.frozen_modules()})  # the trainer's validation copy
    assert twin.clip is clip and twin.middle_guide_attention.alpha is not model.middle_guide_attention.alpha
    twin = copy.deepcopy(model).to("meta")  # a plain copy (bench's MAC count) is moved alone
    assert twin.clip is not clip and twin.clip.vision.device.type == "meta" and clip.vision.device.type == "cpu"


def _local_except_semantics(model):
    """Make every part that is global *within a tile* by design inert: MDTA (channel attention over
    the tile's pixels) and the refine steps (CLIP tokens attending to all of the tile's patches).
    What is left is local convolutions plus the guide steps, whose inputs tiling must preserve:
    the whole picture's CLIP tokens and each patch's positional embedding."""
    for name, p in model.named_parameters():
        if name.endswith("attn.project_out.weight"):
            p.data.zero_()
        if name.endswith("alpha"):
            p.data.fill_(0.0 if "refine" in name else 1.0)
    return model


def _restore(model, pixels, tile, overlap=64, **methods):
    """Run the Restorer; ``methods`` replace some of its methods (the controls below)."""
    from airtool.engine.hardware.device import Runtime
    from airtool.engine.inference.infer import Restorer, TileOptions

    restorer = Restorer(model, get_spec("se-symunet"), Runtime(torch.device("cpu"), "fp32"), TileOptions(tile, overlap))
    for name, function in methods.items():
        setattr(restorer, name, function.__get__(restorer))
    return restorer(pixels)


def test_tiled_output_equals_untiled_within_1_255(shared_data, tiny_clip_dir):
    from airtool.io.image import read_image

    path = min((shared_data / "Rain100L" / "input").glob("*.png"))
    pixels = read_image(path, str(path), 10**9).pixels[:192, :256]
    model = _local_except_semantics(tiny_model(tiny_clip_dir))
    whole = _restore(model, pixels, tile=0)
    tiled = _restore(model, pixels, tile=128)
    assert np.abs(tiled - whole).max() < 1 / 255
    assert np.abs(whole - _restore(_local_except_semantics(tiny_model(tiny_clip_dir, seed=5)), pixels, 0)).max() > 0.1
    # Controls: CLIP run on each tile instead of the picture, or tiles placed at (0, 0), break it.
    per_tile_clip = _restore(model, pixels, tile=128, image_context=lambda self, image: None)
    assert np.abs(per_tile_clip - whole).max() > 20 / 255

    def forward_at_origin(self, batch, windows, context):
        return self.forward_batch(batch, context, origins=None)

    no_origins = _restore(model, pixels, tile=128, _forward_tiles=forward_at_origin)
    assert np.abs(no_origins - whole).max() > 5 / 255


def test_clip_runs_once_per_picture_on_the_whole_picture(tiny_clip_dir):
    model = tiny_model(tiny_clip_dir)
    seen, contexts = [], []
    encoder = model.clip
    original = encoder.forward

    def spy(images):
        seen.append(tuple(images.shape))
        return original(images)

    encoder.forward = spy
    forward = model.forward

    def record(inp, context=None, origins=None):
        contexts.append((context, origins))
        return forward(inp, context=context, origins=origins)

    model.forward = record
    pixels = gradient_image(150, 170)
    _restore(model, pixels, tile=64, overlap=16)
    assert seen == [(1, 3, 150, 170)]  # once, on the whole picture
    assert len(contexts) > 4 and all(c is contexts[0][0] for c, _ in contexts)
    assert {o[0] for _, o in contexts} == {(t, left) for t in (0, 48, 86) for left in (0, 48, 96, 106)}


def test_precision_policy(tiny_clip_dir):
    from airtool.engine.hardware.precision import resolve_precision

    spec = get_spec("se-symunet")
    assert resolve_precision(spec.precision, torch.device("cpu"), "auto") == "fp32"
    from airtool.engine.hardware.device import Runtime
    from airtool.engine.inference.infer import Restorer, TileOptions

    model = tiny_model(tiny_clip_dir)
    pixels = gradient_image(40, 56)
    bf16 = Restorer(model, spec, Runtime(torch.device("cpu"), "bf16"), TileOptions(0))
    out = bf16(pixels)
    assert np.isfinite(out).all() and np.abs(out - _restore(model, pixels, 0)).max() < 0.1


def test_clip_hidden_size_must_match(tiny_clip_dir):
    model = get_spec("se-symunet").create("tiny")
    wrong = clip_encoder_from_config({**TINY_CLIP_VISION, "hidden_size": 48})
    with pytest.raises(WeightsError, match="hidden size 48"):
        model.attach_clip(wrong)


def test_positional_field_is_one_fixed_n01_field_that_windows_agree_on():
    from airtool.models.se_symunet import position_field

    whole = position_field(3, 8, 0, 0, 50, 70)
    assert torch.equal(position_field(3, 8, 17, 33, 20, 37), whole[17:37, 33:70])  # across block borders
    assert torch.equal(position_field(3, 8, 0, 0, 50, 70), whole)  # deterministic
    assert not torch.equal(position_field(4, 8, 0, 0, 50, 70), whole)  # one field per module
    assert not torch.equal(whole[:16, :16], whole[:16, 16:32])  # blocks differ
    assert abs(whole.mean().item()) < 0.05 and abs(whole.std().item() - 1) < 0.05  # the authors' randn
