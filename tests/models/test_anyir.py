"""AnyIR: exact size, authors' key names, shapes, FFT-fusion identity, BN modes, weight round-trip."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from airtool.models.anyir import SPEC, AnyIR, GatedDegradationAdaption, convert_authors_state_dict

# Literal keys read in the authors' net/anyir.py (098dcd1), as a Lightning module's ``net``.
AUTHORS_KEYS = (
    "patch_embed.proj.weight",
    "encoder_level1.0.norm1.body.weight",
    "encoder_level1.0.attn.temperature",
    "encoder_level1.0.attn.qkv_dwconv.weight",
    "encoder_level1.0.attn.gatedcnn.norm.running_var",
    "encoder_level1.0.attn.gatedcnn.W_exp.weight",
    "encoder_level2.4.attn.gatedcnn.W_depth.weight",
    "encoder_level3.0.attn.gatedcnn.tau",
    "latent.6.attn.lam",
    "latent.6.ffn.project_in.weight",
    "down3_4.body.0.weight",
    "reduce_dim_level3.weight",
    "up4_3.body.0.weight",
    "reduce_chan_level3.weight",
    "reduce_chan_level2.weight",
    "decoder_level1.2.attn.gatedcnn.W_gate.weight",
    "refinement.3.attn.project_out.weight",
    "output.weight",
)


@pytest.fixture
def tiny() -> AnyIR:
    torch.manual_seed(0)
    return SPEC.create("tiny")


@pytest.fixture(scope="module")
def paper() -> AnyIR:
    torch.manual_seed(0)
    return SPEC.create("paper")


def test_paper_param_count_is_exact(paper: AnyIR) -> None:
    assert sum(p.numel() for p in paper.parameters()) == SPEC.params == 5_736_376
    per_block = [sum(p.numel() for p in stage[0].parameters()) for stage in
                 (paper.encoder_level1, paper.encoder_level2, paper.encoder_level3, paper.latent)]
    assert per_block == [9_095, 32_518, 121_882, 471_844]


def test_authors_key_names_and_shapes(paper: AnyIR) -> None:
    state = paper.state_dict()
    missing = [k for k in AUTHORS_KEYS if k not in state]
    assert not missing
    assert state["encoder_level1.0.attn.gatedcnn.W_exp.weight"].shape == (37, 14, 1, 1)  # round(8/3*14)
    assert state["latent.0.attn.gatedcnn.W_depth.weight"].shape == (75, 1, 7, 7)
    assert state["reduce_dim_level3.weight"].shape == (112, 224, 1, 1)
    assert state["output.weight"].shape == (3, 56, 3, 3)  # decoder-1 and refinement run at 2C
    assert not any(k.endswith(".bias") and "norm" not in k for k in state)  # bias=False everywhere


def test_lightning_checkpoint_converts_and_loads_strictly(tiny: AnyIR) -> None:
    state = tiny.state_dict()
    ckpt = {"epoch": 3, "state_dict": {f"net.{k}": v.clone() for k, v in state.items()}}
    converted = convert_authors_state_dict(ckpt)
    assert converted.keys() == state.keys()
    other = SPEC.create("tiny")
    other.load_state_dict(converted, strict=True)
    assert torch.equal(other.output.weight, tiny.output.weight)
    assert convert_authors_state_dict(state).keys() == state.keys()  # plain state dict passes through



def test_fft_fusion_equals_direct_sum(tiny: AnyIR) -> None:
    exact = AnyIR(dataclasses.replace(SPEC.config("tiny"), fft_fusion=True)).eval()
    exact.load_state_dict(tiny.state_dict())
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        assert torch.allclose(exact(x), tiny.eval()(x), atol=1e-5)


def test_gated_path_batchnorm_train_and_eval_modes() -> None:
    torch.manual_seed(0)
    gda = GatedDegradationAdaption(6)
    x = torch.randn(2, 6, 8, 8) * 3 + 1
    gda.train()(x)
    assert gda.norm.num_batches_tracked.item() == 1
    assert not torch.allclose(gda.norm.running_mean, torch.zeros(6))
    gda.eval()
    with torch.no_grad():
        one, both = gda(x[:1]), gda(x)
    assert torch.allclose(one, both[:1], atol=1e-6)  # eval: running stats, no batch coupling


def test_train_step_reaches_all_parameters(tiny: AnyIR) -> None:
    x = torch.rand(2, 3, 16, 16)
    restored, aux = tiny.train().forward_train(x, x)
    assert aux == {}
    restored.abs().mean().backward()
    assert all(p.grad is not None for p in tiny.parameters())



def test_spec_metadata() -> None:
    assert SPEC.name == "anyir" and SPEC.size_multiple == 8
    assert set(SPEC.variants) >= {"paper", "tiny"}
    assert SPEC.precision.bf16_max_abs_dev is not None
    assert "BatchNorm" in SPEC.notes
