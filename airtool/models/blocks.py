"""Restormer building blocks shared by several models (Zamir et al., CVPR 2022, Sec. 3).

Module and parameter names follow the authors' code so that their checkpoints load as they are:
``norm1.body.weight``, ``attn.qkv``, ``attn.qkv_dwconv``, ``ffn.project_in`` ...
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _WithBias(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))


class _BiasFree(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))


class LayerNorm2d(nn.Module):
    """Per-pixel LayerNorm over channels, population variance, eps 1e-5.

    The with-bias variant is computed with the fused ``F.layer_norm`` on a channels-last view
    (the authors' hand-written mean/var is slower and overflows in fp16). Statistics are always
    computed in fp32, whatever the autocast dtype; the result is cast back to the input dtype.
    """

    def __init__(self, dim: int, with_bias: bool = True) -> None:
        super().__init__()
        self.with_bias = with_bias
        self.body = _WithBias(dim) if with_bias else _BiasFree(dim)

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        y = x.float().permute(0, 2, 3, 1)
        if self.with_bias:
            y = F.layer_norm(y, y.shape[-1:], self.body.weight.float(), self.body.bias.float(), 1e-5)
        else:
            var = y.var(-1, keepdim=True, unbiased=False)
            y = y * torch.rsqrt(var + 1e-5) * self.body.weight.float()
        return y.permute(0, 3, 1, 2).to(dtype)


class MDTA(nn.Module):
    """Multi-Dconv-head Transposed Attention: attention across channels (Restormer Sec. 3.1)."""

    def __init__(self, dim: int, num_heads: int, bias: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Channel attention of (B, C, H, W) q, k, v; returns (B, C, H, W) before projection."""
        b, c, h, w = q.shape
        heads = self.num_heads
        q = F.normalize(q.reshape(b, heads, c // heads, h * w), dim=-1)
        k = F.normalize(k.reshape(b, heads, c // heads, h * w), dim=-1)
        v = v.reshape(b, heads, c // heads, h * w)
        attn = (q @ k.transpose(-2, -1)) * self.temperature.to(q.dtype)
        out = attn.softmax(dim=-1) @ v
        return out.reshape(b, c, h, w)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        return self.project_out(self.attend(q, k, v))


class GDFN(nn.Module):
    """Gated-Dconv Feed-Forward Network (Restormer Sec. 3.2): GELU(a) * b with a depthwise 3x3."""

    def __init__(self, dim: int, expansion: float, bias: bool = False) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(a) * b)


class TransformerBlock(nn.Module):
    """x + MDTA(LN(x)), then x + GDFN(LN(x)) (Restormer Fig. 2)."""

    def __init__(
        self, dim: int, num_heads: int, expansion: float = 2.66, bias: bool = False, with_bias_norm: bool = True
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, with_bias_norm)
        self.attn = MDTA(dim, num_heads, bias)
        self.norm2 = LayerNorm2d(dim, with_bias_norm)
        self.ffn = GDFN(dim, expansion, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "reflect") -> Tensor:
    """Pad bottom/right so H and W are multiples of ``multiple``.

    Reflect padding cannot exceed size - 1, so tiny inputs fall back to replicate.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class Downsample(nn.Module):
    """Restormer downsampling (Sec. 3): 3x3 conv C -> C/2 then pixel-unshuffle, giving 2C at half size.

    ``body.0`` is the conv, as in the authors' code (AnyIR, NDR-Restore, PromptIR).
    """

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """Restormer upsampling (Sec. 3): 3x3 conv C -> 2C then pixel-shuffle, giving C/2 at double size."""

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)
