"""The fast channel attention equals a literal Restormer MDTA (eq. 2) in any memory layout, and the
row-banded inference path equals the whole-tensor one."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from airtool.models import blocks
from airtool.models.blocks import GDFN, MDTA, TransformerBlock


def literal_mdta(m: MDTA, x: torch.Tensor) -> torch.Tensor:
    """Restormer's code: normalise q and k over pixels, softmax(q k^T * t) per head, then project."""
    b, c, h, w = x.shape
    q, k, v = m.qkv_dwconv(m.qkv(x)).chunk(3, dim=1)
    q, k, v = (t.reshape(b, m.num_heads, c // m.num_heads, h * w) for t in (q, k, v))
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    attn = ((q @ k.transpose(-2, -1)) * m.temperature).softmax(dim=-1)
    return m.project_out((attn @ v).reshape(b, c, h, w))


@pytest.fixture
def mdta() -> MDTA:
    torch.manual_seed(0)
    m = MDTA(dim=16, num_heads=4, bias=True)
    with torch.no_grad():
        m.temperature.uniform_(0.5, 2.0)
    return m


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_mdta_matches_literal_restormer(mdta: MDTA, layout: torch.memory_format) -> None:
    x = torch.randn(2, 16, 12, 20).contiguous(memory_format=layout)
    with torch.no_grad():
        assert torch.allclose(mdta(x), literal_mdta(mdta, x), atol=1e-5)
        q, k, v = mdta.qkv_dwconv(mdta.qkv(x)).chunk(3, dim=1)
        unprojected = mdta.attend(q, k, v)
    assert unprojected.shape == x.shape
    assert torch.allclose(mdta.project_out(unprojected), literal_mdta(mdta, x), atol=1e-5)


def test_mdta_gradients_match_literal(mdta: MDTA) -> None:
    x = torch.randn(1, 16, 8, 8, requires_grad=True)
    (grad_fast,) = torch.autograd.grad(mdta(x).square().sum(), x)
    (grad_literal,) = torch.autograd.grad(literal_mdta(mdta, x).square().sum(), x)
    assert torch.allclose(grad_fast, grad_literal, atol=1e-4)


def test_mdta_fp16_stays_finite_where_an_unnormalised_gram_would_overflow(mdta: MDTA) -> None:
    x = 300 * torch.randn(1, 16, 64, 64)  # |q|^2 summed over 4096 pixels is far above fp16's 65504
    with torch.no_grad():
        out = mdta.half()(x.half())
    assert torch.isfinite(out).all()


# Row bands (blocks.band_rows): inference on the CPU computes the wide tensors a band at a time.


@pytest.fixture
def small_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Band even tiny tensors, 4 rows at a time, so that the tests run bands at test sizes."""
    monkeypatch.setattr(blocks, "BAND_MIN_WIDE_BYTES", 0)
    monkeypatch.setattr(blocks, "BAND_BYTES_PER_THREAD", 0)


def whole(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The whole-tensor path of ``module`` on ``x`` (banding switched off)."""
    with blocks.whole_tensors():
        return module(x)


@pytest.mark.parametrize("height", [8, 13, 21])  # whole bands, a short last band, a halo at both ends
def test_banded_gdfn_equals_the_whole_tensor_path(small_bands: None, height: int) -> None:
    torch.manual_seed(0)
    ffn = GDFN(16, 2.66, bias=True)
    x = torch.randn(2, 16, height, 11).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert blocks.band_rows(x, ffn.project_in.out_channels) == 4
        assert torch.equal(ffn(x), whole(ffn, x))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_banded_mdta_equals_the_literal_restormer(small_bands: None, mdta: MDTA, layout) -> None:
    x = torch.randn(2, 16, 19, 10).contiguous(memory_format=layout)
    with torch.no_grad():
        assert blocks.band_rows(x, mdta.qkv.out_channels) == 4
        assert torch.allclose(mdta(x), literal_mdta(mdta, x), atol=1e-5)


def test_banded_block_under_bf16_autocast_stays_close_to_the_whole_path(small_bands: None) -> None:
    torch.manual_seed(0)
    block = TransformerBlock(16, 2)
    x = torch.randn(1, 16, 24, 24).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        banded, reference = block(x), whole(block, x)
    assert banded.dtype == reference.dtype
    assert (banded.float() - reference.float()).abs().max() < 0.05  # bf16 rounding, not a wrong band


def test_bands_only_without_autograd_and_for_large_wide_tensors(mdta: MDTA) -> None:
    x = torch.randn(1, 16, 64, 64)
    assert blocks.band_rows(x, 48) == 0  # with autograd on (training), never banded
    with torch.no_grad():
        assert blocks.band_rows(x, 48) == 0  # 0.8 MB wide tensor: below BAND_MIN_WIDE_BYTES
        big = torch.empty(1, 48, 256, 256)
        rows = blocks.band_rows(big, 254)
        assert 4 <= rows <= 128
        assert blocks.band_rows(big.half(), 254) == 0  # fp16: the normalise-first path, whole


def literal_gdfn(ffn: GDFN, x: torch.Tensor) -> torch.Tensor:
    """Restormer's code: project_in, depthwise 3x3, GELU(a) * b, project_out (eq. 6-7)."""
    a, b = ffn.dwconv(ffn.project_in(x)).chunk(2, dim=1)
    return ffn.project_out(F.gelu(a) * b)


needs_onednn = pytest.mark.skipif(
    not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")),
    reason="torch built without oneDNN's fused convolutions")


@needs_onednn
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_fused_gate_equals_the_literal_gdfn(bias: bool, layout) -> None:
    torch.manual_seed(0)
    ffn = GDFN(16, 2.66, bias=bias)
    x = torch.randn(2, 16, 9, 13).contiguous(memory_format=layout)
    with torch.no_grad():
        assert blocks.fused_gate_applies(x)
        fused = ffn(x)
        with blocks.unfused_gate():
            assert not blocks.fused_gate_applies(x)
            unfused = ffn(x)
        literal = literal_gdfn(ffn, x)
    assert torch.allclose(fused, literal, atol=1e-5)
    assert torch.equal(unfused, literal)


@needs_onednn
def test_banded_fused_gate_equals_its_whole_tensor_path(small_bands: None) -> None:
    torch.manual_seed(0)
    ffn = GDFN(16, 2.66, bias=True)
    x = torch.randn(1, 16, 21, 11).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert blocks.fused_gate_applies(x) and blocks.band_rows(x, ffn.project_in.out_channels) == 4
        assert torch.allclose(ffn(x), whole(ffn, x), atol=1e-6)


def test_fused_gate_only_for_fp32_cpu_inference() -> None:
    x = torch.randn(1, 16, 8, 8)
    assert not blocks.fused_gate_applies(x)  # autograd on: training keeps the unfused gate
    with torch.no_grad():
        assert not blocks.fused_gate_applies(x.bfloat16())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not blocks.fused_gate_applies(x)
