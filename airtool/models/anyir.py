"""AnyIR: a Restormer-style U-Net of Degradation Adaptation Blocks (DAB).

Ren, Zamfir, Wu, Li, Li, Paudel, Timofte, Yang, Van Gool, Sebe, "Any Image Restoration via
Efficient Spatial-Frequency Degradation Adaptation", arXiv 2504.14249 (2025).
Code origin: github.com/Amazingren/AnyIR, ``net/anyir.py`` of the 2026-02 code release
(commit 098dcd1; no licence file). This is an independent re-implementation written from that
code and the paper. Module and parameter names equal the authors'
so their checkpoints load after ``convert_authors_state_dict`` strips Lightning's ``net.`` prefix.

Differences from the authors' forward (weights are unaffected):

- the frequency fusion ``irfft2(rfft2(A) + rfft2(G))`` is, by linearity of the FFT, ``A + G``;
  it is computed directly unless ``AnyIRConfig.fft_fusion`` is set (then the FFT runs in fp32);
- the input is reflect-padded to a multiple of 8 and the output cropped (the authors require
  sizes that are multiples of 8; their test crops to 16);
- the per-channel spatial mean/std of the gated path are computed in fp32 under autocast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from airtool.models.base import RestorationNet
from airtool.models.blocks import GDFN, MDTA, Downsample, LayerNorm2d, Upsample, pad_to_multiple
from airtool.models.spec import ModelSpec, PrecisionPolicy


@dataclass(frozen=True)
class AnyIRConfig:
    """Defaults are those of the released code (``AnyIR()`` with no arguments)."""

    dim: int = 28
    num_blocks: tuple[int, int, int, int] = (3, 5, 5, 7)
    num_refinement_blocks: int = 4
    heads: tuple[int, int, int, int] = (1, 2, 4, 8)
    ffn_expansion_factor: float = 2.0
    gate_expansion: float = 8 / 3  # r_expan of the gated path (hidden = round(r * C/2))
    gate_kernel: int = 7
    bias: bool = False
    with_bias_norm: bool = True
    fft_fusion: bool = False  # compute F_f literally with rFFT2 / irFFT2 (same result, slower)
    in_channels: int = 3
    out_channels: int = 3


class GatedDegradationAdaption(nn.Module):
    """Gated degradation adaptation (paper Algorithm 1, Fig. 2) on the odd half of the channels.

    F^ = BN(F_in); Delta = sigmoid(mu + sigma) of F^ per channel; tau_adj = tau * Delta;
    [gamma, beta, alpha] = W_exp F^; alpha' = W_depth(alpha) * (1 + tau_adj);
    F_gate = sigmoid(gamma) * W_gate[beta, alpha']; F_out = W_proj(F_gate + F_in).
    """

    def __init__(self, dim: int, expansion: float = 8 / 3, kernel_size: int = 7, eps: float = 1e-6) -> None:
        super().__init__()
        hidden = int(round(expansion * dim))
        alpha_ch = hidden - 2 * dim
        if alpha_ch <= 0:
            raise ValueError(f"gate expansion {expansion} leaves no alpha channels for dim {dim}")
        self.eps = eps
        self.split_sizes = (dim, dim, alpha_ch)  # gamma, beta, alpha
        self.norm = nn.BatchNorm2d(dim)
        self.W_exp = nn.Conv2d(dim, hidden, 1, bias=False)
        self.W_depth = nn.Conv2d(alpha_ch, alpha_ch, kernel_size, padding=kernel_size // 2, groups=alpha_ch, bias=False)
        self.W_gate = nn.Conv2d(dim + alpha_ch, dim, 1, bias=False)
        self.W_proj = nn.Conv2d(dim, dim, 1, bias=False)
        self.tau = nn.Parameter(torch.ones(1, dim, 1, 1))

    def _temperature(self, f_hat: Tensor, width: int) -> Tensor:
        """tau_adj = tau * sigmoid(mu + sigma) (Alg. 1 steps 2-4), tiled over ``width`` channels."""
        stats = f_hat.float()
        mu = stats.mean(dim=(2, 3), keepdim=True)
        sigma = torch.sqrt((stats - mu).pow(2).mean(dim=(2, 3), keepdim=True) + self.eps)
        tau_adj = self.tau * torch.sigmoid(mu + sigma)
        reps = -(-width // tau_adj.shape[1])  # ceil: the authors repeat tau_adj, then cut to width
        return tau_adj.repeat(1, reps, 1, 1)[:, :width].to(f_hat.dtype)

    def forward(self, x: Tensor) -> Tensor:
        f_hat = self.norm(x)
        gamma, beta, alpha = torch.split(self.W_exp(f_hat), self.split_sizes, dim=1)
        alpha = self.W_depth(alpha) * (1.0 + self._temperature(f_hat, alpha.shape[1]))  # Alg. 1 step 7
        f_gate = torch.sigmoid(gamma) * self.W_gate(torch.cat([beta, alpha], dim=1))  # step 8
        return self.W_proj(f_gate + x)  # step 9: residual, then 1x1


class DegradationAdaptiveAttention(MDTA):
    """The DAB mixer (paper Fig. 1b, Algorithms 1-2): split, attend / gate, spatial-frequency fusion.

    Even channels go through transposed attention (MDTA on C/2 channels, no projection of its
    own), odd channels through ``GatedDegradationAdaption``; the two are fused by Algorithm 2
    and projected by a 1x1 conv on all C channels. Parameter names are the authors'
    (``temperature``, ``qkv``, ``qkv_dwconv``, ``gatedcnn``, ``lam``, ``project_out``).
    """

    def __init__(self, dim: int, num_heads: int, cfg: AnyIRConfig) -> None:
        if dim % 2:
            raise ValueError(f"DAB needs an even channel count, got {dim}")
        super().__init__(dim // 2, num_heads, cfg.bias)
        self.gatedcnn = GatedDegradationAdaption(dim // 2, cfg.gate_expansion, cfg.gate_kernel)
        self.lam = nn.Parameter(torch.tensor(0.5))  # Alg. 2 step 3, unconstrained
        self.project_out = nn.Conv2d(dim, dim, 1, bias=cfg.bias)  # acts on all C channels here
        self.fft_fusion = cfg.fft_fusion

    def _frequency(self, att: Tensor, gate: Tensor) -> Tensor:
        """F_f = irfft2(rfft2(A) + rfft2(G)) (Alg. 2 step 2), channel-interleaved to C channels."""
        if self.fft_fusion:
            h, w = att.shape[-2:]
            spec = torch.fft.rfft2(att.float()) + torch.fft.rfft2(gate.float())
            f_freq = torch.fft.irfft2(spec, s=(h, w)).to(att.dtype)
        else:
            f_freq = att + gate  # identical by linearity of the FFT
        return f_freq.repeat_interleave(2, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        x_att, x_gate = x[:, 0::2], x[:, 1::2]  # sub-latent split: even / odd channels
        q, k, v = self.qkv_dwconv(self.qkv(x_att)).chunk(3, dim=1)
        att = self.attend(q, k, v)
        gate = self.gatedcnn(x_gate)
        f_spatial = torch.cat([att + torch.sigmoid(gate), gate + torch.sigmoid(att)], dim=1)  # Alg. 2 step 1
        fused = self.lam * f_spatial + (1.0 - self.lam) * self._frequency(att, gate)  # step 3
        return self.project_out(fused)


class DegradationAdaptationBlock(nn.Module):
    """x + DAB-mixer(LN(x)), then x + GDFN(LN(x)) (paper Fig. 1b; Restormer FFN with gamma 2)."""

    def __init__(self, dim: int, num_heads: int, cfg: AnyIRConfig) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, cfg.with_bias_norm)
        self.attn = DegradationAdaptiveAttention(dim, num_heads, cfg)
        self.norm2 = LayerNorm2d(dim, cfg.with_bias_norm)
        self.ffn = GDFN(dim, cfg.ffn_expansion_factor, cfg.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """3x3 conv patch embedding (Restormer Sec. 3); kept as a module for the ``patch_embed.proj`` key."""

    def __init__(self, in_c: int, embed_dim: int, bias: bool = False) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, 3, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


def _stage(dim: int, heads: int, n: int, cfg: AnyIRConfig) -> nn.Sequential:
    return nn.Sequential(*[DegradationAdaptationBlock(dim, heads, cfg) for _ in range(n)])


class AnyIR(RestorationNet):
    """Four-level U-Net (paper Fig. 1a): patch embed, encoder, latent, decoder, refinement.

    Channels C, 2C, 4C, 8C. The latent is reduced 8C -> 4C by a 1x1 conv before upsampling;
    decoder levels 3 and 2 fuse the skip by concat + 1x1; level 1 concatenates to 2C without a
    reduction, and the decoder-1 and refinement blocks run at 2C. Global residual to the input.
    """

    def __init__(self, cfg: AnyIRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d1, d2, d3, d4 = (cfg.dim * m for m in (1, 2, 4, 8))
        n, heads = cfg.num_blocks, cfg.heads
        self.patch_embed = OverlapPatchEmbed(cfg.in_channels, d1, cfg.bias)
        self.encoder_level1 = _stage(d1, heads[0], n[0], cfg)
        self.down1_2 = Downsample(d1)
        self.encoder_level2 = _stage(d2, heads[1], n[1], cfg)
        self.down2_3 = Downsample(d2)
        self.encoder_level3 = _stage(d3, heads[2], n[2], cfg)
        self.down3_4 = Downsample(d3)
        self.latent = _stage(d4, heads[3], n[3], cfg)
        self.reduce_dim_level3 = nn.Conv2d(d4, d3, 1, bias=cfg.bias)
        self.up4_3 = Upsample(d3)
        self.reduce_chan_level3 = nn.Conv2d(d2 + d3, d3, 1, bias=cfg.bias)
        self.decoder_level3 = _stage(d3, heads[2], n[2], cfg)
        self.up3_2 = Upsample(d3)
        self.reduce_chan_level2 = nn.Conv2d(d3, d2, 1, bias=cfg.bias)
        self.decoder_level2 = _stage(d2, heads[1], n[1], cfg)
        self.up2_1 = Upsample(d2)
        self.decoder_level1 = _stage(d2, heads[0], n[0], cfg)
        self.refinement = _stage(d2, heads[0], cfg.num_refinement_blocks, cfg)
        self.output = nn.Conv2d(d2, cfg.out_channels, 3, padding=1, bias=cfg.bias)
        self.size_multiple = 8  # three 2x downsamplings

    def forward(self, inp: Tensor) -> Tensor:
        h, w = inp.shape[-2:]
        padded = pad_to_multiple(inp, self.size_multiple)
        enc1 = self.encoder_level1(self.patch_embed(padded))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.reduce_dim_level3(self.latent(self.down3_4(enc3)))
        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], dim=1)))
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], dim=1)))
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], dim=1))
        out = self.output(self.refinement(dec1)) + padded  # global residual
        return out[..., :h, :w]


def convert_authors_state_dict(obj: Mapping[str, object]) -> dict[str, Tensor]:
    """Turn an authors' checkpoint into a state dict for ``AnyIR`` (= its ``inference_modules()``).

    Accepts the Lightning file's dict (``{"state_dict": {"net.xxx": ...}, ...}``) or a plain state
    dict, with or without the ``net.`` / ``module.`` prefixes. Keys are otherwise unchanged.
    """
    state = obj.get("state_dict", obj)
    if not isinstance(state, Mapping):
        raise ValueError("checkpoint has no state dict")
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, Tensor):
            continue
        for prefix in ("module.", "net."):
            key = key.removeprefix(prefix)
        out[key] = value
    return out


SPEC = ModelSpec(
    name="anyir",
    title="AnyIR",
    paper="Ren et al., Any Image Restoration via Efficient Spatial-Frequency Degradation Adaptation, "
    "arXiv 2504.14249 (2025)",
    code="github.com/Amazingren/AnyIR net/anyir.py @ 098dcd1 (2026-02 release; no licence file)",
    build=AnyIR,
    variants={
        "paper": AnyIRConfig(),
        "tiny": AnyIRConfig(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 1, 2, 2)),
    },
    params=5_736_376,
    size_multiple=8,
    precision=PrecisionPolicy(
        bf16_max_abs_dev=0.0244,
        note="bf16 is allowed but not the CPU default until trained weights are checked; LayerNorm and the gated "
        "path's statistics run in fp32 and the FFT fusion as A+G; fp16 is untested, so not offered.",
    ),
    notes=(
        "BatchNorm2d inside every DAB's gated path: in eval mode it normalises with running statistics "
        "(tile-independent), but the gate's temperature uses each tile's own per-channel spatial mean/std, "
        "so tiled output differs slightly from whole-image output; use large tiles with overlap. In train "
        "mode BN uses batch statistics (avoid batch size 1 fine-tuning). Input reflect-padded to x8."
    ),
)
