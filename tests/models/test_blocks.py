"""The fast channel attention equals a literal Restormer MDTA (eq. 2) in any memory layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from airtool.models.blocks import MDTA


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
