"""Restormer building blocks shared by several models (Zamir et al., CVPR 2022, Sec. 3).

Module and parameter names follow the authors' code so that their checkpoints load as they are:
``norm1.body.weight``, ``attn.qkv``, ``attn.qkv_dwconv``, ``ffn.project_in`` ...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


def _pixels_last(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, HW, C); a view, not a copy, when ``x`` is channels-last."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def channel_attention_map(q: Tensor, k: Tensor, heads: int, temperature: Tensor) -> Tensor:
    """Restormer eq. 2: softmax(tau * q_hat k_hat^T) per head, shape (B, heads, d, d), d = C / heads.

    q_hat, k_hat are q, k L2-normalised over the pixels. The norms are divided out of the small
    d x d Gram matrix instead of normalising the two full-size tensors, and the Gram matrix is
    read straight from channels-last memory, so no full-size copy is made (same result within
    float rounding). fp16 normalises first, because an unnormalised Gram can exceed fp16's range.
    """
    c = q.shape[1]
    qt = _pixels_last(q).unflatten(2, (heads, c // heads))  # (B, HW, heads, d)
    kt = _pixels_last(k).unflatten(2, (heads, c // heads))
    if q.dtype == torch.float16:
        qt, kt = F.normalize(qt, dim=1), F.normalize(kt, dim=1)
        gram = qt.permute(0, 2, 3, 1) @ kt.permute(0, 2, 1, 3)
        return (gram * temperature.to(gram.dtype)).softmax(dim=-1)
    gram, q_sq, k_sq = _gram_terms(qt, kt)
    return _attention_from_gram(gram, q_sq, k_sq, temperature)


def _gram_terms(qt: Tensor, kt: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Gram matrix q^T k per head and the squared pixel norms of q and k (fp32), from (B, HW, heads, d).

    In fp32 the norms are ``square().sum()``: on channels-last bands that is faster than
    ``linalg.vector_norm``, a strided reduction (docs/history.md#inference). Lower precisions keep ``vector_norm``, which
    accumulates the squares in fp32 without rounding each one first.
    """
    gram = qt.permute(0, 2, 3, 1) @ kt.permute(0, 2, 1, 3)
    if qt.dtype == torch.float32:
        return gram, qt.square().sum(dim=1), kt.square().sum(dim=1)
    q_sq = torch.linalg.vector_norm(qt, dim=1, dtype=torch.float32).square()
    k_sq = torch.linalg.vector_norm(kt, dim=1, dtype=torch.float32).square()
    return gram, q_sq, k_sq


def _attention_from_gram(gram: Tensor, q_sq: Tensor, k_sq: Tensor, temperature: Tensor) -> Tensor:
    """softmax(tau * gram / (|q| |k|)): the norms divided out of the d x d matrix (Restormer eq. 2)."""
    q_norm = q_sq.sqrt().clamp_min(1e-12)
    k_norm = k_sq.sqrt().clamp_min(1e-12)
    gram = (gram.float() / (q_norm.unsqueeze(-1) * k_norm.unsqueeze(-2))).to(gram.dtype)
    return (gram * temperature.to(gram.dtype)).softmax(dim=-1)


def apply_channel_attention(attn: Tensor, v: Tensor, projection: Tensor | None = None) -> Tensor:
    """``attn @ v`` per head, then an optional 1x1 projection (C_out, C, 1, 1) folded into one GEMM.

    With a projection W the heads' outputs are never materialised: W . blockdiag(attn) is a
    (C_out, C) matrix per image, applied to v in one pass. The result is channels-last.
    """
    b, heads, d, _ = attn.shape
    c = heads * d
    h, w = v.shape[-2:]
    weight = torch.eye(c, dtype=attn.dtype, device=attn.device) if projection is None else projection.flatten(1)
    mix = torch.einsum("ohe,bhef->bohf", weight.to(attn.dtype).unflatten(1, (heads, d)), attn).flatten(2)
    out = _pixels_last(v) @ mix.transpose(1, 2)  # (B, HW, C_out)
    return out.view(b, h, w, -1).permute(0, 3, 1, 2)


# Row bands (inference on the CPU). A block's 1x1 convolutions widen the features 3-5x, and at
# full resolution those wide tensors (tens of MB) leave the caches, so the 1x1 and depthwise
# convolutions run at memory speed. Computing them one band of rows at a time (a one-row halo for
# the 3x3 depthwise conv) keeps the wide tensor in cache. It is the same computation per pixel,
# so it equals the whole-tensor path: GDFN bit for bit, MDTA within float rounding (its Gram
# matrix is summed band by band, in fp32).
BAND_BYTES_PER_THREAD = 2 << 20  # a wide band of about 2 MB per thread
BAND_MIN_WIDE_BYTES = 24 << 20  # a smaller wide tensor stays in cache whole: no bands


def band_rows(x: Tensor, wide_channels: int) -> int:
    """Rows per band for a ``wide_channels`` tensor at ``x``'s size; 0 for the whole-tensor path.

    Bands only without autograd (training keeps the whole-tensor path), on the CPU, outside fp16
    autocast, and where the whole wide tensor would exceed BAND_MIN_WIDE_BYTES.
    """
    if torch.is_grad_enabled() or x.device.type != "cpu" or x.dim() != 4 or x.dtype == torch.float16:
        return 0
    if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.float16:
        return 0
    b, _, h, w = x.shape
    row_bytes = b * w * wide_channels * 4  # sized for fp32 (bf16 bands are then half as large)
    if row_bytes * h < BAND_MIN_WIDE_BYTES:
        return 0
    rows = max(4, BAND_BYTES_PER_THREAD * torch.get_num_threads() // row_bytes)
    return rows if rows * 2 <= h else 0


@contextmanager
def whole_tensors() -> Iterator[None]:
    """Switch the row bands off inside the block (the whole-tensor path), to measure what they give."""
    global BAND_MIN_WIDE_BYTES
    saved, BAND_MIN_WIDE_BYTES = BAND_MIN_WIDE_BYTES, 1 << 62
    try:
        yield
    finally:
        BAND_MIN_WIDE_BYTES = saved


def _row_bands(h: int, rows: int) -> Iterator[tuple[int, int, int, int]]:
    """(r0, r1, a0, a1): a band's rows [r0, r1) and the same rows with a one-row halo [a0, a1)."""
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        yield r0, r1, max(0, r0 - 1), min(h, r1 + 1)


def _pointwise_then_depthwise(
    x: Tensor, pointwise: nn.Conv2d, depthwise: nn.Conv2d, band: tuple[int, int, int, int]
) -> Tensor:
    """1x1 conv then depthwise 3x3 conv (zero padding 1) over rows [a0, a1) of x, kept to rows [r0, r1)."""
    r0, r1, a0, a1 = band
    wide = F.conv2d(x[:, :, a0:a1], pointwise.weight, pointwise.bias)
    wide = F.conv2d(wide, depthwise.weight, depthwise.bias, padding=1, groups=depthwise.groups)
    return wide[:, :, r0 - a0 : r1 - a0]


def _empty_like_rows(x: Tensor, like: Tensor) -> Tensor:
    """An uninitialised channels-last tensor of ``like``'s batch, channels and dtype at ``x``'s size."""
    shape = (like.shape[0], like.shape[1], *x.shape[2:])
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=torch.channels_last)


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
        attn = channel_attention_map(q, k, self.num_heads, self.temperature)
        return apply_channel_attention(attn, v)

    def forward(self, x: Tensor) -> Tensor:
        rows = band_rows(x, self.qkv.out_channels)
        if rows:
            attn, v = self._attention_banded(x, rows)
        else:
            q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
            attn = channel_attention_map(q, k, self.num_heads, self.temperature)
        out = apply_channel_attention(attn, v, self.project_out.weight)
        if self.project_out.bias is not None:
            out = out + self.project_out.bias.to(out.dtype).view(1, -1, 1, 1)
        return out

    def _attention_banded(self, x: Tensor, rows: int) -> tuple[Tensor, Tensor]:
        """The attention map and v, with qkv computed one band of rows at a time (``band_rows``).

        q and k exist only as bands: their Gram matrix and squared norms are summed over the
        bands in fp32, and only v is kept whole.
        """
        c, heads = x.shape[1], self.num_heads
        v = gram = q_sq = k_sq = None
        for band in _row_bands(x.shape[2], rows):
            q, k, v_band = _pointwise_then_depthwise(x, self.qkv, self.qkv_dwconv, band).chunk(3, dim=1)
            if v is None:
                v = _empty_like_rows(x, v_band)
            v[:, :, band[0] : band[1]] = v_band
            qt = _pixels_last(q).unflatten(2, (heads, c // heads))
            kt = _pixels_last(k).unflatten(2, (heads, c // heads))
            band_gram, band_q_sq, band_k_sq = _gram_terms(qt, kt)
            if gram is None:
                gram, q_sq, k_sq = band_gram.float(), band_q_sq, band_k_sq
            else:
                gram, q_sq, k_sq = gram + band_gram.float(), q_sq + band_q_sq, k_sq + band_k_sq
        return _attention_from_gram(gram.to(v.dtype), q_sq, k_sq, self.temperature), v


class GDFN(nn.Module):
    """Gated-Dconv Feed-Forward Network (Restormer Sec. 3.2): GELU(a) * b with a depthwise 3x3."""

    def __init__(self, dim: int, expansion: float, bias: bool = False) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        rows = band_rows(x, self.project_in.out_channels)
        if rows:
            return self._forward_banded(x, rows)
        return self.project_out(self._gate(x))

    def _gate(self, x: Tensor) -> Tensor:
        """GELU(a) * b, a and b the two halves of dwconv(project_in(x)) (Restormer eq. 6-7)."""
        if fused_gate_applies(x):
            return _fused_gate(x, self.project_in, self.dwconv)
        a, b = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return F.gelu(a) * b

    def _forward_banded(self, x: Tensor, rows: int) -> Tensor:
        """The same computation one band of rows at a time, so the wide hidden tensor stays in cache."""
        out = None
        for r0, r1, a0, a1 in _row_bands(x.shape[2], rows):
            y = self.project_out(self._gate(x[:, :, a0:a1])[:, :, r0 - a0 : r1 - a0])
            if out is None:
                out = _empty_like_rows(x, y)
            out[:, :, r0:r1] = y
        return out


# The gate through oneDNN's post-ops (inference on the CPU, fp32): GELU applied inside the
# depthwise conv of the first half, and the product with it inside the conv of the second half,
# so neither the pre-activation halves nor GELU(a) are written and read again as separate passes.
# These are the fusions inductor makes, called directly (torch.ops.mkldnn._convolution_pointwise).
FUSED_GATE = True  # switched off only to measure what it gives (``unfused_gate``)


def fused_gate_applies(x: Tensor) -> bool:
    """True for fp32 CPU inference (no autograd, no autocast) where torch has oneDNN's fused convolutions."""
    if not FUSED_GATE or torch.is_grad_enabled() or x.device.type != "cpu" or x.dtype != torch.float32:
        return False
    if torch.is_autocast_enabled("cpu") or not torch.backends.mkldnn.is_available():
        return False
    return hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def _halves(conv: nn.Conv2d, hidden: int) -> tuple[tuple[Tensor, Tensor | None], tuple[Tensor, Tensor | None]]:
    """(weight, bias) of a conv's first ``hidden`` output channels and of the rest: views, no copies."""
    weight, bias = conv.weight, conv.bias
    return ((weight[:hidden], None if bias is None else bias[:hidden]),
            (weight[hidden:], None if bias is None else bias[hidden:]))


def _fused_gate(x: Tensor, project_in: nn.Conv2d, dwconv: nn.Conv2d) -> Tensor:
    """GELU(dw_a(a)) * dw_b(b), a and b each from its half of ``project_in``, with oneDNN post-ops.

    Each half is its own 1x1 conv, so a and b come out contiguous without splitting a wide tensor.
    The same values as the unfused gate within float rounding.
    """
    hidden = project_in.out_channels // 2
    conv = torch.ops.mkldnn._convolution_pointwise
    (in_a, in_ba), (in_b, in_bb) = _halves(project_in, hidden)
    (dw_a, dw_ba), (dw_b, dw_bb) = _halves(dwconv, hidden)
    geometry = ([1, 1], [1, 1], [1, 1], hidden)  # padding, stride, dilation, groups
    gelu_a = conv(F.conv2d(x, in_a, in_ba), dw_a, dw_ba, *geometry, "gelu", [], "none")  # "none": erf, as F.gelu
    return conv.binary(F.conv2d(x, in_b, in_bb), gelu_a, dw_b, dw_bb, *geometry, "mul", None, None, [], None)


@contextmanager
def unfused_gate() -> Iterator[None]:
    """Switch the fused gate off (GELU and the product as separate passes), to measure what it gives."""
    global FUSED_GATE
    saved, FUSED_GATE = FUSED_GATE, False
    try:
        yield
    finally:
        FUSED_GATE = saved


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
