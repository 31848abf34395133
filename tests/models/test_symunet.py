from __future__ import annotations

import torch

from airtool.models import get_spec
from airtool.models.weights import load_model
from tests.reference.symunet_reference import ReferenceSymUNet


def test_paper_variant_has_exact_parameter_count():
    spec = get_spec("symunet")
    model = spec.create("paper")
    assert sum(p.numel() for p in model.parameters()) == 22_288_827 == spec.params


def test_key_names_match_the_authors():
    keys = set(get_spec("symunet").create("paper").state_dict())
    assert set(ReferenceSymUNet().state_dict()) == keys
    for key in ("intro.weight", "ending.bias", "downs.0.bias", "ups.2.0.weight", "middle_blks.7.ffn.project_out.weight",
                "encoders.0.3.norm1.body.bias", "decoders.2.3.attn.temperature", "encoders.2.5.attn.qkv_dwconv.weight"):
        assert key in keys



def test_authors_checkpoint_loads_and_gives_their_pixels(tmp_path):
    torch.manual_seed(1)
    ref = ReferenceSymUNet(width=16, enc=(1, 2, 1), middle=2, dec=(1, 2, 1)).eval()
    for p in ref.parameters():  # move off the init values so LayerNorm/bias paths matter
        p.data.add_(torch.randn_like(p) * 0.02)
    path = tmp_path / "net_g_latest.pth"
    torch.save({"params": ref.state_dict()}, path)  # what the authors' BasicSR fork writes
    from airtool.models.symunet import SymUNet, SymUNetConfig

    cfg = SymUNetConfig(width=16, enc_blocks=(1, 2, 1), middle_blocks=2, dec_blocks=(1, 2, 1))
    ours = SymUNet(cfg).eval()
    from airtool.models.weights import load_state_strict, read_state_dict

    state, _ = read_state_dict(path)
    load_state_strict(ours, state, str(path))
    x = torch.rand(1, 3, 45, 70)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max() < 1e-5


def test_load_model_reads_variant_from_metadata(tiny_weights):
    model, spec = load_model("symunet", tiny_weights)
    assert spec.name == "symunet" and model.cfg.width == 8 and not model.training


def test_fast_inference_path_equals_the_reference_at_paper_size():
    """The path restore runs (channels-last, fused attention, fp32) vs the authors' forward: within 1e-4."""
    from airtool.engine.hardware.device import Runtime
    from airtool.engine.inference.infer import Restorer, TileOptions

    torch.manual_seed(0)
    ref = ReferenceSymUNet().eval()
    spec = get_spec("symunet")
    ours = spec.create()
    ours.load_state_dict(ref.state_dict())
    restorer = Restorer(ours, spec, Runtime(torch.device("cpu"), "fp32"), TileOptions(tile=0))
    x = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        assert (restorer.forward_batch(x) - ref(x)).abs().max() < 1e-4
