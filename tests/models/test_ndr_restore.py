"""NDR-Restore: exact sizes, authors' key names, inference without NDR-Degrad, bidirectional loss."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor

from airtool.errors import UsageError
from airtool.models.ndr_restore import SPEC, NDRDegrad, NDRRestore, NDRRestoreConfig, convert_authors_state_dict

# Literal keys read in the authors' models/modules/NDR.py (7c0bd21), as NDRN's state dict.
AUTHORS_KEYS = (
    "degradation_representations",
    "restoration_net.dr",
    "restoration_net.extractor.bias",
    "restoration_net.block1.3.attn.qkv_dwconv.weight",
    "restoration_net.pool3.body.0.weight",
    "restoration_net.bottom.7.attn.temperature",
    "restoration_net.res_connect1.mapping.weight",
    "restoration_net.res_connect2.degradation_recog.attn.qkv.bias",
    "restoration_net.res_connect3.degradation_recog.ffn.project_out.weight",
    "restoration_net.res_connect3.inject_degradation.low_rank_transform1.conv_C.1.weight",
    "restoration_net.res_connect1.inject_degradation.low_rank_transform3.conv_W.1.bias",
    "restoration_net.block_up1.0.weight",
    "restoration_net.block_up3.6.ffn.project_out.weight",
    "restoration_net.refinement.2.norm2.body.bias",
    "restoration_net.reconstruction.weight",
    "degradation_net.block1.conv.2.weight",
    "degradation_net.inject_degradation2.f.weight",
    "degradation_net.block_up3.1.conv.0.bias",
    "degradation_net.refinement.body.0.body.3.conv_du.2.weight",
    "degradation_net.refinement.body.1.bias",
    "degradation_net.reconstruction.bias",
)


@pytest.fixture
def tiny() -> NDRRestore:
    torch.manual_seed(0)
    return SPEC.create("tiny")


@pytest.fixture(scope="module")
def paper() -> NDRRestore:
    torch.manual_seed(0)
    return SPEC.create("paper")


def _inference_only_config() -> NDRRestoreConfig:
    return dataclasses.replace(SPEC.config("tiny"), with_degrader=False)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_param_counts_are_exact(paper: NDRRestore) -> None:
    assert _count(paper.inference_modules()) == SPEC.params == 27_330_315
    assert _count(paper) == 36_962_484
    net = paper.restoration_net
    assert [_count(m) for m in (net.res_connect1, net.res_connect2, net.res_connect3)] == [166_625, 313_409, 828_161]
    assert paper.restoration_net.bottom[0].attn.num_heads == 6


def test_authors_key_names(paper: NDRRestore) -> None:
    ours = paper.state_dict()
    authors = dict.fromkeys(AUTHORS_KEYS, torch.zeros(1))
    converted = convert_authors_state_dict(authors, full=True)
    assert "degradation_representations" not in converted
    assert not [k for k in converted if k not in ours]
    assert ours["restoration_net.dr"].shape == (1, 32, 128)
    assert ours["restoration_net.block_up1.0.weight"].shape == (96, 96, 1, 1)  # level-1 1x1 keeps 96


def test_authors_checkpoint_loads_strictly(tiny: NDRRestore) -> None:
    state = tiny.state_dict()
    authors = {f"module.{k}": v.clone() for k, v in state.items()}
    authors["module.degradation_representations"] = state["restoration_net.dr"].clone()
    full = NDRRestore(SPEC.config("tiny"))
    full.load_state_dict(convert_authors_state_dict(authors, full=True), strict=True)
    infer_only = NDRRestore(_inference_only_config())
    infer_only.inference_modules().load_state_dict(convert_authors_state_dict(authors), strict=True)
    assert torch.equal(infer_only.restoration_net.dr, tiny.restoration_net.dr)
    assert infer_only.degradation_net is None



def test_eval_forward_never_calls_degrader(tiny: NDRRestore, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> Tensor:
        raise AssertionError("NDR-Degrad ran at inference")

    monkeypatch.setattr(NDRDegrad, "forward", boom)
    assert tiny.inference_modules() is tiny.restoration_net
    assert not any(isinstance(m, NDRDegrad) for m in tiny.inference_modules().modules())
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        assert tiny.eval()(x).shape == x.shape
        assert tiny.inference_modules()(x).shape == x.shape
    with pytest.raises(AssertionError, match="inference"):
        tiny.train().forward_train(x, x)


def test_forward_train_bidirectional_loss_reaches_both_nets(tiny: NDRRestore) -> None:
    degraded, clean = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    restored, aux = tiny.train().forward_train(degraded, clean)
    assert restored.shape == clean.shape and set(aux) == {"degrade"}
    assert aux["degrade"].ndim == 0 and aux["degrade"] > 0
    (F.l1_loss(restored, clean) + aux["degrade"]).backward()
    degrader, restorer = tiny.degradation_net, tiny.restoration_net
    assert degrader is not None
    assert all(p.grad is not None for p in degrader.parameters())
    assert restorer.dr.grad is not None and restorer.dr.grad.abs().sum() > 0
    assert all(p.grad is not None for p in restorer.parameters())


def test_degrade_loss_alone_trains_query_and_ndr(tiny: NDRRestore) -> None:
    x = torch.rand(1, 3, 16, 16)
    _, aux = tiny.train().forward_train(x, x.flip(-1))
    aux["degrade"].backward()
    net = tiny.restoration_net
    assert net.dr.grad.abs().sum() > 0
    assert net.res_connect1.mapping.weight.grad.abs().sum() > 0
    assert net.reconstruction.weight.grad is None  # only the degradation path is reached


def test_without_degrader_refuses_training() -> None:
    model = NDRRestore(_inference_only_config())
    assert _count(model) == _count(model.inference_modules())
    with pytest.raises(UsageError, match="NDR-Degrad"):
        model.forward_train(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_inference_weights_safetensors_round_trip_strict(tiny: NDRRestore, tmp_path: Path) -> None:
    path = tmp_path / "ndr.safetensors"
    state = tiny.inference_modules().state_dict()
    assert not any(k.startswith("degradation_net") for k in state)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    other = SPEC.create("tiny")
    other.inference_modules().load_state_dict(load_file(str(path)), strict=True)
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        assert torch.equal(other.eval()(x), tiny.eval()(x))
    with pytest.raises(RuntimeError, match="degradation_net"):
        other.inference_modules().load_state_dict(tiny.state_dict(), strict=True)


def test_full_state_safetensors_round_trip(tiny: NDRRestore, tmp_path: Path) -> None:
    path = tmp_path / "ndr-train.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.state_dict().items()}, str(path))
    other = SPEC.create("tiny")
    other.load_state_dict(load_file(str(path)), strict=True)
    assert torch.equal(other.degradation_net.reconstruction.weight, tiny.degradation_net.reconstruction.weight)


def test_spec_metadata() -> None:
    assert SPEC.name == "ndr-restore" and SPEC.size_multiple == 8
    assert set(SPEC.variants) >= {"paper", "tiny"}
    assert SPEC.precision.bf16_max_abs_dev is not None
