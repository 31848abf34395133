"""NDR-Restore: all-in-one restoration with a Neural Degradation Representation (NDR).

Yao, Xu, Guan, Huang, Xiong, "Neural Degradation Representation Learning for All-In-One Image
Restoration", IEEE TIP 2024, arXiv 2310.12848.
Code origin: github.com/mdyao/NDR-Restore (MIT), ``models/modules/NDR.py`` (commit 7c0bd21),
``models/NDR_model.py``, ``options/train.yml``. Independent re-implementation written from that
code and the paper.

Layout and key names. ``NDRRestore`` holds two sub-networks under the authors' names:

- ``restoration_net``: the restoration network R (27,330,315 parameters, NDR included as
  ``restoration_net.dr``). It is the only part used at inference (``inference_modules()``), so
  inference weights are ``model.restoration_net.state_dict()``: the authors' keys without the
  ``restoration_net.`` prefix.
- ``degradation_net``: NDR-Degrad D, a training-only helper (9,632,169 parameters) that re-degrades
  the ground truth from R's degradation features; it never runs in ``forward``.

The authors' ``NDRN`` registers the NDR tensor twice (``degradation_representations`` and, by
aliasing, ``restoration_net.dr``); here it lives once, in ``restoration_net.dr`` (safetensors
refuses aliased tensors). ``convert_authors_state_dict`` drops the duplicate.

Differences from the authors' code (weights unaffected): the CP mask of the low-rank transform
is one einsum instead of a 5-D broadcast, and the injection computes the shared low-rank
transform of the degradation feature once (the authors compute it twice, identically). The
input is reflect-padded to a multiple of 8 here (the authors do it in their data loader).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from airtool.errors import UsageError
from airtool.models.base import RestorationNet
from airtool.models.blocks import Downsample, TransformerBlock, Upsample, pad_to_multiple
from airtool.models.spec import ModelSpec, PrecisionPolicy

SIZE_MULTIPLE = 8  # three 2x downsamplings (the authors pad in their data loader)

DegradationFeatures = tuple[Tensor, Tensor, Tensor]


@dataclass(frozen=True)
class NDRRestoreConfig:
    dim: int = 48
    num_blocks: tuple[int, int, int, int] = (4, 6, 6, 8)
    num_refinement_blocks: int = 3
    heads: tuple[int, int, int, int] = (1, 2, 4, 6)  # bottom level uses 6 heads, not 8
    ffn_expansion_factor: float = 2.66
    num_atoms: int = 32  # NDR: 32 degradation atoms ...
    atom_dim: int = 128  # ... of dimension 128
    query_dim: int = 64  # DQ / DI working width
    rank: int = 16  # CP rank of the low-rank transform
    degrader_dim: int = 48
    with_degrader: bool = True  # False builds the inference part only
    degrade_loss_weight: float = 1.0  # lambda_degrad of options/train.yml
    in_channels: int = 3
    out_channels: int = 3


class DegradationAttention(nn.Module):
    """Degradation Query (paper: DQ module): softmax attention of per-pixel queries over the NDR atoms.

    q = 1x1(m) in R^{HW x 128}; A = softmax(q NDR^T * t) over the atoms; d = A NDR, then 1x1 back.
    The query conv is called ``qkv`` in the authors' code.
    """

    def __init__(self, dim: int, atom_dim: int) -> None:
        super().__init__()
        self.temperature = nn.Parameter(torch.ones(1))
        self.qkv = nn.Conv2d(dim, atom_dim, 1, bias=True)
        self.project_out = nn.Conv2d(atom_dim, dim, 1, bias=True)

    def forward(self, x: Tensor, ndr: Tensor) -> Tensor:
        b, _, h, w = x.shape
        q = self.qkv(x).flatten(2).transpose(1, 2)  # (B, HW, 128)
        atoms = ndr.to(q.dtype)  # (1, N, 128)
        attn = (q @ atoms.transpose(1, 2) * self.temperature.to(q.dtype)).softmax(dim=-1)
        out = (attn @ atoms).transpose(1, 2).reshape(b, -1, h, w)
        return self.project_out(out)


class _ProjectOut(nn.Module):
    """A lone 1x1 conv kept inside a module for the authors' ``ffn.project_out`` key."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.project_out = nn.Conv2d(dim, dim, 1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.project_out(x)


class DegradationRecognition(nn.Module):
    """DQ head: atom attention, then a 1x1 conv (the authors' reduced "FFN")."""

    def __init__(self, dim: int, atom_dim: int) -> None:
        super().__init__()
        self.attn = DegradationAttention(dim, atom_dim)
        self.ffn = _ProjectOut(dim)

    def forward(self, x: Tensor, ndr: Tensor) -> Tensor:
        return self.ffn(self.attn(x, ndr))


def _factor(in_ch: int, out_ch: int, pool: tuple[int | None, int | None]) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(pool), nn.Conv2d(in_ch, out_ch, 1, bias=True), nn.Sigmoid())


class LowRankTransform(nn.Module):
    """Low-rank CP mask of the DI module (paper: "low-rank CP-based fusion"): x * mean_r(c_r (x) h_r (x) w_r), rank 16.

    Channel factors from global pooling (1x1 C -> 16C), height factors from pooling over W and
    width factors from pooling over H (1x1 C -> 16 each), all sigmoid-gated.
    """

    def __init__(self, channels: int, rank: int = 16) -> None:
        super().__init__()
        self.rank = rank
        self.conv_C = _factor(channels, rank * channels, (1, 1))
        self.conv_H = _factor(channels, rank, (None, 1))
        self.conv_W = _factor(channels, rank, (1, None))

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        fc = self.conv_C(x).reshape(n, self.rank, c)
        fh = self.conv_H(x).reshape(n, self.rank, h)
        fw = self.conv_W(x).reshape(n, self.rank, w)
        mask = torch.einsum("nrc,nrh,nrw->nchw", fc, fh, fw) / self.rank
        return x * mask.to(x.dtype)


class DegradationInject(nn.Module):
    """Degradation Injection (paper: DI module): out = f(LRT(d')) * LRT(e) + g(LRT(d')), d' = 1x1(d)."""

    def __init__(self, dim: int, out_n_feat: int, rank: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 1, bias=True)
        self.f = nn.Conv2d(dim, out_n_feat, 1, bias=True)
        self.g = nn.Conv2d(dim, out_n_feat, 1, bias=True)
        self.low_rank_transform1 = LowRankTransform(dim, rank)
        self.low_rank_transform3 = LowRankTransform(out_n_feat, rank)

    def forward(self, x: Tensor, degradation: Tensor) -> Tensor:
        x = self.low_rank_transform3(x)
        d = self.low_rank_transform1(self.conv1(degradation))  # computed once (the authors: twice)
        return self.f(d) * x + self.g(d)


class DegradationRepresentationLearning(nn.Module):
    """A skip connection of R: DQ on the encoder feature, then DI of the result into it."""

    def __init__(self, in_n_feat: int, cfg: NDRRestoreConfig) -> None:
        super().__init__()
        self.mapping = nn.Conv2d(in_n_feat, cfg.query_dim, 3, padding=1, bias=False)
        self.degradation_recog = DegradationRecognition(cfg.query_dim, cfg.atom_dim)
        self.inject_degradation = DegradationInject(cfg.query_dim, in_n_feat, cfg.rank)

    def forward(self, x: Tensor, ndr: Tensor) -> tuple[Tensor, Tensor]:
        degradation = self.degradation_recog(self.mapping(x), ndr)
        return self.inject_degradation(x, degradation), degradation


def _blocks(dim: int, heads: int, n: int, cfg: NDRRestoreConfig) -> list[nn.Module]:
    return [TransformerBlock(dim, heads, cfg.ffn_expansion_factor) for _ in range(n)]


class NDRRestorationNet(RestorationNet):
    """R: Restormer-style U-Net whose skips pass through DQ + DI; no global residual (paper Fig. 2)."""

    def __init__(self, cfg: NDRRestoreConfig) -> None:
        super().__init__()
        d1, d2, d3, d4 = (cfg.dim * m for m in (1, 2, 4, 8))
        n, heads = cfg.num_blocks, cfg.heads
        # The NDR: a learned dictionary of degradation atoms, shared by the three DQ modules.
        self.dr = nn.Parameter(torch.randn(1, cfg.num_atoms, cfg.atom_dim))
        self.extractor = nn.Conv2d(cfg.in_channels, d1, 3, padding=1, bias=True)
        self.block1 = nn.Sequential(*_blocks(d1, heads[0], n[0], cfg))
        self.pool1 = Downsample(d1)
        self.block2 = nn.Sequential(*_blocks(d2, heads[1], n[1], cfg))
        self.pool2 = Downsample(d2)
        self.block3 = nn.Sequential(*_blocks(d3, heads[2], n[2], cfg))
        self.pool3 = Downsample(d3)
        self.bottom = nn.Sequential(*_blocks(d4, heads[3], n[3], cfg))
        self.res_connect1 = DegradationRepresentationLearning(d1, cfg)
        self.res_connect2 = DegradationRepresentationLearning(d2, cfg)
        self.res_connect3 = DegradationRepresentationLearning(d3, cfg)
        self.up3 = Upsample(d4)
        self.block_up3 = nn.Sequential(nn.Conv2d(d4, d3, 1, bias=False), *_blocks(d3, heads[2], n[2], cfg))
        self.up2 = Upsample(d3)
        self.block_up2 = nn.Sequential(nn.Conv2d(d3, d2, 1, bias=False), *_blocks(d2, heads[1], n[1], cfg))
        self.up1 = Upsample(d2)
        self.block_up1 = nn.Sequential(nn.Conv2d(d2, d2, 1, bias=False), *_blocks(d2, heads[0], n[0], cfg))
        self.refinement = nn.Sequential(*_blocks(d2, heads[0], cfg.num_refinement_blocks, cfg))
        self.reconstruction = nn.Conv2d(d2, cfg.out_channels, 3, padding=1, bias=True)

    def restore(self, x: Tensor) -> tuple[Tensor, DegradationFeatures]:
        """Restored image and the degradation features d1..d3 (H/W sizes multiples of 8)."""
        x1 = self.block1(self.extractor(x))
        x2 = self.block2(self.pool1(x1))
        x3 = self.block3(self.pool2(x2))
        bottom = self.bottom(self.pool3(x3))
        skip1, d1 = self.res_connect1(x1, self.dr)
        skip2, d2 = self.res_connect2(x2, self.dr)
        skip3, d3 = self.res_connect3(x3, self.dr)
        y = self.block_up3(torch.cat([skip3, self.up3(bottom)], dim=1))  # skip first, as the authors
        y = self.block_up2(torch.cat([skip2, self.up2(y)], dim=1))
        y = self.block_up1(torch.cat([skip1, self.up1(y)], dim=1))
        return self.reconstruction(self.refinement(y)), (d1, d2, d3)  # no global residual

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        return self.restore(pad_to_multiple(x, SIZE_MULTIPLE))[0][..., :h, :w]


class DoubleConv(nn.Module):
    """NDR-Degrad's residual block: x + ReLU(conv(ReLU(conv(x)))), 3x3 convs with bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x)


class ChannelAttention(nn.Module):
    """RCAN channel attention: x * sigmoid(1x1(ReLU(1x1(GAP(x)))))."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.conv_du(F.adaptive_avg_pool2d(x, 1))


class RCAB(nn.Module):
    """Residual channel-attention block (RCAN): x + CA(conv(ReLU(conv(x))))."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            ChannelAttention(channels, reduction),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """RCAN residual group with one RCAB: x + conv(RCAB(x))."""

    def __init__(self, channels: int, reduction: int = 16, n_resblocks: int = 1) -> None:
        super().__init__()
        blocks: list[nn.Module] = [RCAB(channels, reduction) for _ in range(n_resblocks)]
        self.body = nn.Sequential(*blocks, nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class NDRDegrad(nn.Module):
    """NDR-Degrad D (paper: auxiliary degradation network): conv U-Net mapping the clean image back to the degraded one.

    Each skip is DI(encoder feature, d_level of R), so the degradation loss trains DQ and the NDR.
    Ends with an RCAN residual group, a 3x3 conv and the input added back.
    """

    def __init__(self, cfg: NDRRestoreConfig) -> None:
        super().__init__()
        d1, d2, d3, d4 = (cfg.degrader_dim * m for m in (1, 2, 4, 8))
        q = cfg.query_dim
        self.extractor = nn.Conv2d(cfg.out_channels, d1, 3, padding=1)
        self.block1, self.pool1 = DoubleConv(d1), Downsample(d1)
        self.block2, self.pool2 = DoubleConv(d2), Downsample(d2)
        self.block3, self.pool3 = DoubleConv(d3), Downsample(d3)
        self.bottom = DoubleConv(d4)
        self.inject_degradation1 = DegradationInject(q, d1, cfg.rank)
        self.inject_degradation2 = DegradationInject(q, d2, cfg.rank)
        self.inject_degradation3 = DegradationInject(q, d3, cfg.rank)
        self.up3 = Upsample(d4)
        self.block_up3 = nn.Sequential(nn.Conv2d(d4, d3, 1, bias=False), DoubleConv(d3))
        self.up2 = Upsample(d3)
        self.block_up2 = nn.Sequential(nn.Conv2d(d3, d2, 1, bias=False), DoubleConv(d2))
        self.up1 = Upsample(d2)
        self.block_up1 = nn.Sequential(nn.Conv2d(d2, d2, 1, bias=False), DoubleConv(d2))
        self.refinement = ResidualGroup(d2, reduction=16)
        self.reconstruction = nn.Conv2d(d2, cfg.in_channels, 3, padding=1)

    def forward(self, clean: Tensor, degradation: DegradationFeatures) -> Tensor:
        x1 = self.block1(self.extractor(clean))
        x2 = self.block2(self.pool1(x1))
        x3 = self.block3(self.pool2(x2))
        bottom = self.bottom(self.pool3(x3))
        skip1 = self.inject_degradation1(x1, degradation[0])
        skip2 = self.inject_degradation2(x2, degradation[1])
        skip3 = self.inject_degradation3(x3, degradation[2])
        y = self.block_up3(torch.cat([skip3, self.up3(bottom)], dim=1))
        y = self.block_up2(torch.cat([skip2, self.up2(y)], dim=1))
        y = self.block_up1(torch.cat([skip1, self.up1(y)], dim=1))
        return self.reconstruction(self.refinement(y)) + clean


class NDRRestore(RestorationNet):
    """R for inference; R and D together for the bidirectional optimisation (paper abstract)."""

    def __init__(self, cfg: NDRRestoreConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.restoration_net = NDRRestorationNet(cfg)
        self.degradation_net: NDRDegrad | None = NDRDegrad(cfg) if cfg.with_degrader else None
        self.size_multiple = SIZE_MULTIPLE

    def forward(self, x: Tensor) -> Tensor:
        return self.restoration_net(x)

    def forward_train(
        self, degraded: Tensor, clean: Tensor, task: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """HQ' = R(LQ) and LQ' = D(GT; d1..d3); aux loss ``degrade`` = w * L1(LQ', LQ).

        The caller adds the restoration loss L1(HQ', GT); one backward trains R, D and the NDR
        jointly, as the authors' ``optimize_parameters`` does.
        """
        if self.degradation_net is None:
            raise UsageError("ndr-restore was built without NDR-Degrad (with_degrader=False); it cannot train")
        h, w = degraded.shape[-2:]
        restored, degradation = self.restoration_net.restore(pad_to_multiple(degraded, SIZE_MULTIPLE))
        redegraded = self.degradation_net(pad_to_multiple(clean, SIZE_MULTIPLE), degradation)[..., :h, :w]
        loss = self.cfg.degrade_loss_weight * F.l1_loss(redegraded, degraded)
        return restored[..., :h, :w], {"degrade": loss}

    def inference_modules(self) -> nn.Module:
        return self.restoration_net


def convert_authors_state_dict(obj: Mapping[str, object], *, full: bool = False) -> dict[str, Tensor]:
    """Turn an authors' ``NDRN`` state dict (``<iter>_G.pth``) into ours.

    ``full=False`` (default) gives the keys of ``NDRRestore.inference_modules()`` (the restoration
    net, prefix stripped); ``full=True`` gives the keys of the whole ``NDRRestore`` (restoration
    and degradation nets). A ``module.`` prefix is removed; the duplicate top-level
    ``degradation_representations`` is used only where ``restoration_net.dr`` is missing.
    """
    state = obj.get("state_dict", obj)
    if not isinstance(state, Mapping):
        raise ValueError("checkpoint has no state dict")
    clean = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, Tensor)}
    ndr = clean.pop("degradation_representations", None)
    if ndr is not None:
        clean.setdefault("restoration_net.dr", ndr)
    if full:
        return clean
    prefix = "restoration_net."
    return {k.removeprefix(prefix): v for k, v in clean.items() if k.startswith(prefix)}


SPEC = ModelSpec(
    name="ndr-restore",
    title="NDR-Restore",
    paper="Yao et al., Neural Degradation Representation Learning for All-In-One Image Restoration, "
    "IEEE TIP 2024 (arXiv 2310.12848)",
    code="github.com/mdyao/NDR-Restore models/modules/NDR.py @ 7c0bd21 (MIT)",
    build=NDRRestore,
    variants={
        "paper": NDRRestoreConfig(),
        "tiny": NDRRestoreConfig(
            dim=8,
            num_blocks=(1, 1, 1, 1),
            num_refinement_blocks=1,
            heads=(1, 1, 2, 2),
            num_atoms=4,
            atom_dim=8,
            query_dim=8,
            rank=2,
            degrader_dim=8,
        ),
    },
    params=27_330_315,
    size_multiple=SIZE_MULTIPLE,
    precision=PrecisionPolicy(
        bf16_max_abs_dev=0.0267,
        note="bf16 is allowed but not the CPU default until trained weights are checked; LayerNorm statistics "
        "run in fp32; fp16 is untested, so not offered.",
    ),
    notes=(
        "params counts the restoration net (inference_modules()); with the training-only NDR-Degrad "
        "the model has 36,962,484. Inference weights = restoration_net.state_dict(). No global "
        "residual. Input reflect-padded to x8."
    ),
)
