"""Every registered model, by registering it: the checks here run over ``model_names()``, so a new
model is tested as soon as it is in ``MODEL_MODULES`` (its own file adds what is special to it)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from airtool.engine.inference.infer import check_size_multiple
from airtool.engine.inference.load import load_restorer
from airtool.errors import WeightsError
from airtool.models import DEFAULT_MODEL, get_spec, model_names
from airtool.models.weights import load_model, save_weights

MODELS = model_names()


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _tiny(name: str, clip_dir: Path) -> nn.Module:
    """The tiny variant, seeded; a CLIP model gets the tiny test encoder (its forward needs one)."""
    torch.manual_seed(0)
    model, _ = load_model(name, variant="tiny", clip=clip_dir, random_seed=0)
    return model


def test_the_registry_lists_the_default_first_and_every_model_has_the_tiny_variant():
    assert MODELS[0] == DEFAULT_MODEL
    for name in MODELS:
        assert "tiny" in get_spec(name).variants, name


@pytest.mark.parametrize("name", MODELS)
def test_paper_parameter_count_equals_the_spec(name: str):
    spec = get_spec(name)
    with torch.device("meta"):  # no memory, no initialisation: the count is the architecture's
        module = spec.create(spec.default_variant)
    count = sum(p.numel() for p in module.inference_modules().parameters())
    assert count == spec.params, f"{name}: {count:,} parameters, spec says {spec.params:,}"


@pytest.mark.parametrize("name", MODELS)
def test_spec_and_module_agree_on_the_size_multiple(name: str, tiny_clip_dir: Path):
    spec = get_spec(name)
    for variant in spec.variants:
        with torch.device("meta"):
            module = spec.create(variant)
        check_size_multiple(module, spec)  # raises when the spec's padding would not suffice
        own = getattr(module, "size_multiple", None)
        if own is not None and variant == spec.default_variant:
            assert own == spec.size_multiple, f"{name}: module pads to {own}, spec to {spec.size_multiple}"


@pytest.mark.parametrize("name", MODELS)
def test_odd_sizes_keep_their_shape_directly_and_through_the_wrapper(name: str, tiny_clip_dir: Path):
    model = _tiny(name, tiny_clip_dir)
    x = torch.rand(1, 3, 37, 45)
    with torch.no_grad():
        out = model(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    restorer = load_restorer(name, variant="tiny", device="cpu", precision="fp32", clip=tiny_clip_dir, random_seed=0)
    pixels = np.random.default_rng(0).integers(0, 256, (29, 51, 3), dtype=np.uint8)
    restored = restorer(pixels)
    assert restored.shape == pixels.shape and restored.dtype == np.uint8


@pytest.mark.parametrize("name", MODELS)
def test_wrapper_padding_gives_the_models_own_result(name: str, tiny_clip_dir: Path):
    """Padding once in the wrapper changes nothing against the module's own padding."""
    restorer = load_restorer(name, variant="tiny", device="cpu", precision="fp32", clip=tiny_clip_dir, random_seed=0)
    x = torch.rand(1, 3, 37, 45, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        direct = restorer.model(x.contiguous(memory_format=torch.channels_last))
    if restorer._has_context():  # SE-SymUNet: the whole picture's CLIP context, as the wrapper passes it
        pytest.skip("context models are checked tile against whole picture in test_se_symunet.py")
    wrapped = restorer.forward_batch(x)
    assert torch.allclose(wrapped, direct, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_safetensors_round_trip_loads_strictly(name: str, tiny_clip_dir: Path, tmp_path: Path):
    model = _tiny(name, tiny_clip_dir)
    spec = get_spec(name)
    path = tmp_path / f"{name}.safetensors"
    save_weights(model.inference_modules(), path, model=name, variant="tiny", config={}, dtype="fp32")
    loaded, _ = load_model(name, path, clip=tiny_clip_dir)
    want, got = model.inference_modules().state_dict(), loaded.inference_modules().state_dict()
    assert set(want) == set(got)
    assert all(torch.equal(want[k], got[k]) for k in want), spec.name
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    save_file({**state, "stray.weight": torch.zeros(1)}, str(tmp_path / "extra.safetensors"))
    with pytest.raises(WeightsError, match=r"unexpected keys: stray\.weight"):
        load_model(name, tmp_path / "extra.safetensors", variant="tiny", clip=tiny_clip_dir)
    if not state:
        return  # a model without weights (identity) cannot miss one
    first = sorted(state)[0]
    save_file({k: v for k, v in state.items() if k != first}, str(tmp_path / "short.safetensors"))
    with pytest.raises(WeightsError, match=f"missing keys: {re.escape(first)}"):
        load_model(name, tmp_path / "short.safetensors", variant="tiny", clip=tiny_clip_dir)


@pytest.mark.parametrize("name", MODELS)
def test_forward_train_returns_the_restored_batch_and_named_scalar_losses(name: str, tiny_clip_dir: Path):
    model = _tiny(name, tiny_clip_dir).train()
    degraded, clean = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    restored, aux = model.forward_train(degraded, clean, torch.tensor([0, 1]))
    assert isinstance(restored, torch.Tensor) and restored.shape == clean.shape
    assert isinstance(aux, dict)
    for key, loss in aux.items():
        assert isinstance(key, str) and isinstance(loss, torch.Tensor) and loss.ndim == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("name", MODELS)
def test_sparse_gradients_says_whether_a_step_can_leave_parameters_without_a_gradient(name: str, tiny_clip_dir: Path):
    """DDP trusts this flag: a model that keeps it False must give every parameter a gradient
    (else DDP stops with an error); one that sets it must really leave some without (one image,
    so DaAIR's routers send it to one expert of several)."""
    model = _tiny(name, tiny_clip_dir).train()
    restored, aux = model.forward_train(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), torch.tensor([0]))
    if restored.requires_grad:  # the identity has no parameters
        (restored.mean() + sum(aux.values(), torch.zeros(()))).backward()
    without = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    if model.sparse_gradients:
        assert without
    else:
        assert without == []
