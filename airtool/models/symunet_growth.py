"""Growing a trained small SymUNet into a wider and deeper one that computes the same function
(Net2Net: Chen, Goodfellow and Shlens, "Accelerating learning via knowledge transfer", ICLR 2016).

Why: a step of the width-16 SymUNet costs a small share of a paper-size step, so on a CPU the
small network learns more per hour early on; growing it hands what it learnt to the paper size.

How (Net2WiderNet, Sec. 2.1, with the channel copies split unevenly; Net2DeeperNet, Sec. 2.2):

- every feature channel ``c`` of the small network becomes ``k`` adjacent channels
  ``k*c … k*c+k-1`` of the wide one (``k`` = width ratio). Copied channels carry equal values, so
  LayerNorm statistics over channels, the per-head channel attention of MDTA (each key appears
  ``k`` times, each with a ``k``-th of the softmax weight) and the additive skips are unchanged;
- a layer that reads copied channels gets the small layer's weight split among the copies, in
  random shares that sum to one: the output is the same, but the copies receive different
  gradients, so they do not stay copies forever;
- a hidden GDFN channel the copies do not cover (``int(dim * 2.66)`` is not always ``k`` times the
  small one) is written with a zero weight;
- the stages' extra blocks are new Restormer blocks whose two output projections are zero, so
  each is the identity (its residual adds nothing) until training moves them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from airtool.models.blocks import TransformerBlock
from airtool.models.symunet import SymUNet, SymUNetConfig

SPLIT_NOISE = 0.1  # spread of the copies' shares around 1/k


def grow(small: SymUNet, cfg: SymUNetConfig, seed: int = 0) -> SymUNet:
    """A ``cfg`` SymUNet computing what ``small`` computes (to float rounding)."""
    k = _width_ratio(small.cfg, cfg)
    big = SymUNet(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        _conv(big.intro, small.intro, _identity(small.cfg.img_channels), _copies(small.cfg.width, k), k, gen)
        _conv(big.ending, small.ending, _copies(small.cfg.width, k), _identity(small.cfg.img_channels), k, gen)
        for stage_big, stage_small in zip(big.encoders, small.encoders, strict=True):
            _stage(stage_big, stage_small, k, gen)
        _stage(big.middle_blks, small.middle_blks, k, gen)
        for stage_big, stage_small in zip(big.decoders, small.decoders, strict=True):
            _stage(stage_big, stage_small, k, gen)
        for down_big, down_small in zip(big.downs, small.downs, strict=True):
            _conv(down_big, down_small, _copies(down_small.in_channels, k), _copies(down_small.out_channels, k), k, gen)
        for up_big, up_small in zip(big.ups, small.ups, strict=True):
            conv = up_small[0]
            _conv(up_big[0], conv, _copies(conv.in_channels, k), _shuffled_copies(conv.out_channels, k), k, gen)
    return big


def _width_ratio(small: SymUNetConfig, big: SymUNetConfig) -> int:
    same = (small.heads, small.middle_heads, len(small.enc_blocks), small.img_channels, small.ffn_expansion)
    if same != (big.heads, big.middle_heads, len(big.enc_blocks), big.img_channels, big.ffn_expansion):
        raise ValueError("growth keeps the heads, levels, channels and FFN expansion; only width and depth grow")
    deeper = zip((*small.enc_blocks, small.middle_blocks, *small.dec_blocks),
                 (*big.enc_blocks, big.middle_blocks, *big.dec_blocks), strict=True)
    if big.width % small.width or any(b < s for s, b in deeper):
        raise ValueError("the grown width must be a multiple of the small one, and no stage may lose blocks")
    return big.width // small.width


# A channel map lists, for each channel of the grown tensor, the small channel it copies (-1: none).


def _identity(n: int) -> Tensor:
    return torch.arange(n)


def _copies(n: int, k: int) -> Tensor:
    return torch.arange(n * k) // k


def _shuffled_copies(n: int, k: int) -> Tensor:
    """Before PixelShuffle(2): grown channel ``4*C + s`` copies small ``4*(C // k) + s``, so that
    after the shuffle grown channel ``C`` copies small ``C // k``."""
    grown = torch.arange(n * k)
    return (grown // 4) // k * 4 + grown % 4


def _padded_copies(n_small: int, n_big: int, k: int) -> Tensor:
    """Hidden channels: copies where they exist, -1 for the rest."""
    rows = _copies(n_small, k)
    return torch.cat([rows, torch.full((n_big - len(rows),), -1, dtype=torch.long)])


def _shares(out: int, ins: Tensor, k: int, gen: torch.Generator) -> Tensor:
    """(out, len(ins)) shares of each small input weight among its copies: random, summing to 1
    over the copies of one small channel, 0 where a grown input copies nothing."""
    valid = ins >= 0
    shares = torch.ones(out, len(ins)) / k + torch.randn(out, len(ins), generator=gen) * SPLIT_NOISE / k
    groups = torch.where(valid, ins, 0)
    total = torch.zeros(out, int(groups.max()) + 1).index_add_(1, groups, shares * valid)
    shares = shares / total[:, groups] * valid
    return shares


def _copy_weight(weight: Tensor, outs: Tensor, ins: Tensor, k: int, gen: torch.Generator, split: bool) -> Tensor:
    picked = weight[outs.clamp(min=0)][:, ins.clamp(min=0)]
    if not split:  # depthwise: each grown channel is its small channel's own filter
        return picked
    shares = _shares(len(outs), ins, k, gen)
    return picked * shares.view(*shares.shape, *([1] * (weight.dim() - 2))).to(picked.dtype)


def _conv(big: nn.Conv2d, small: nn.Conv2d, ins: Tensor, outs: Tensor, k: int, gen: torch.Generator) -> None:
    """Copy a dense convolution: rows by ``outs``, columns by ``ins`` split among copies."""
    split = ins.numel() > small.in_channels
    big.weight.copy_(_copy_weight(small.weight, outs, ins, k if split else 1, gen, split))
    if small.bias is not None:
        big.bias.copy_(small.bias[outs.clamp(min=0)])


def _depthwise(big: nn.Conv2d, small: nn.Conv2d, outs: Tensor) -> None:
    big.weight.copy_(small.weight[outs.clamp(min=0)])
    if small.bias is not None:
        big.bias.copy_(small.bias[outs.clamp(min=0)])


def _stage(big: nn.Sequential, small: nn.Sequential, k: int, gen: torch.Generator) -> None:
    for block_big, block_small in zip(big, small, strict=False):
        _block(block_big, block_small, k, gen)
    for block in list(big)[len(small):]:
        _make_identity(block)


def _block(big: TransformerBlock, small: TransformerBlock, k: int, gen: torch.Generator) -> None:
    dim = small.norm1.body.weight.numel()
    chans = _copies(dim, k)
    for norm_big, norm_small in ((big.norm1, small.norm1), (big.norm2, small.norm2)):
        for name, param in norm_small.body.named_parameters():
            getattr(norm_big.body, name).copy_(param[chans])
    qkv = torch.cat([part * dim + chans for part in range(3)])  # q, k and v each copied in place
    _conv(big.attn.qkv, small.attn.qkv, chans, qkv, k, gen)
    _depthwise(big.attn.qkv_dwconv, small.attn.qkv_dwconv, qkv)
    big.attn.temperature.copy_(small.attn.temperature)
    _conv(big.attn.project_out, small.attn.project_out, chans, chans, k, gen)
    hidden_small, hidden_big = small.ffn.project_out.in_channels, big.ffn.project_out.in_channels
    hidden = _padded_copies(hidden_small, hidden_big, k)
    gates = torch.cat([hidden, torch.where(hidden >= 0, hidden + hidden_small, -1)])  # a and b halves
    _conv(big.ffn.project_in, small.ffn.project_in, chans, gates, k, gen)
    _depthwise(big.ffn.dwconv, small.ffn.dwconv, gates)
    _conv(big.ffn.project_out, small.ffn.project_out, hidden, chans, k, gen)


def _make_identity(block: TransformerBlock) -> None:
    """A residual block adds nothing while both output projections are zero (Net2DeeperNet)."""
    for conv in (block.attn.project_out, block.ffn.project_out):
        conv.weight.zero_()
        if conv.bias is not None:
            conv.bias.zero_()
