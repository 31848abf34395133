"""Net2Net growth of a SymUNet: the grown network computes what the small one computes, its
copied channels are not exact copies (they can learn apart), and extra blocks start as identities."""

from __future__ import annotations

import pytest
import torch

from airtool.models.symunet import SPEC, SymUNet, SymUNetConfig
from airtool.models.symunet_growth import grow

WIDE = SymUNetConfig(width=24, enc_blocks=(2, 2, 2), middle_blocks=2, dec_blocks=(2, 1, 2), middle_heads=2)


@pytest.fixture(scope="module")
def small() -> SymUNet:
    torch.manual_seed(0)
    net = SymUNet(SPEC.variants["tiny"]).eval()
    with torch.no_grad():
        for param in net.parameters():
            param.add_(torch.randn_like(param) * 0.1)  # away from the init's ones and zeros
    return net


def test_the_grown_network_computes_the_same_function(small: SymUNet):
    big = grow(small, WIDE).eval()
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        torch.testing.assert_close(big(x), small(x), rtol=0, atol=2e-5)


def test_copies_get_different_gradients(small: SymUNet):
    big = grow(small, WIDE)
    big(torch.rand(1, 3, 32, 32)).square().mean().backward()
    grad = big.intro.weight.grad  # rows 0 and 1 write copies of one channel, read in unequal shares
    assert not torch.allclose(grad[0], grad[1], rtol=1e-3, atol=0)


def test_new_blocks_are_identities_and_seeds_differ(small: SymUNet):
    big = grow(small, WIDE, seed=1)
    extra = big.encoders[0][1]
    x = torch.rand(1, 24, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(extra(x), x)
    other = grow(small, WIDE, seed=2)
    assert not torch.equal(big.encoders[0][0].attn.qkv.weight, other.encoders[0][0].attn.qkv.weight)


@pytest.mark.parametrize("bad", [
    SymUNetConfig(width=20, enc_blocks=(1, 1, 1), middle_blocks=1, dec_blocks=(1, 1, 1), middle_heads=2),  # not 8k
    SymUNetConfig(width=16, enc_blocks=(1, 1, 1), middle_blocks=1, dec_blocks=(1, 1, 1), middle_heads=8),  # heads
    SymUNetConfig(width=16, enc_blocks=(1, 1, 0), middle_blocks=1, dec_blocks=(1, 1, 1), middle_heads=2),  # fewer
])
def test_growth_refuses_what_it_cannot_preserve(small: SymUNet, bad: SymUNetConfig):
    with pytest.raises(ValueError):
        grow(small, bad)
