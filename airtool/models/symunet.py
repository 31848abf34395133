"""SymUNet: a symmetric U-Net of Restormer blocks with additive skips.

Jiao et al., "SymUNet / SE-SymUNet", arXiv 2512.10581; code: WenlongJiao/SymUNet
(``basicsr/models/archs/SymUNet_arch.py``, class ``SymUNet``). This is the baseline without
CLIP semantic injection. Module names match the authors' so their BasicSR checkpoints
(``{"params": state_dict}``) load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import Tensor, nn

from airtool.models.base import RestorationNet
from airtool.models.blocks import TransformerBlock, pad_to_multiple
from airtool.models.spec import ModelSpec, PrecisionPolicy


@dataclass(frozen=True)
class SymUNetConfig:
    width: int = 48
    enc_blocks: tuple[int, ...] = (4, 6, 6)
    middle_blocks: int = 8
    dec_blocks: tuple[int, ...] = (6, 6, 4)  # deepest level first
    heads: tuple[int, ...] = (1, 2, 4)  # per level, shared by encoder and decoder
    middle_heads: int = 8
    ffn_expansion: float = 2.66
    img_channels: int = 3


def _stage(dim: int, n: int, heads: int, expansion: float) -> nn.Sequential:
    return nn.Sequential(*[TransformerBlock(dim, heads, expansion) for _ in range(n)])


class SymUNet(RestorationNet):
    """Symmetric 4-level U-Net: same width in encoder and decoder at each level (paper Sec. 3)."""

    def __init__(self, cfg: SymUNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        levels = len(cfg.enc_blocks)
        self.intro = nn.Conv2d(cfg.img_channels, cfg.width, 3, padding=1, bias=True)
        self.ending = nn.Conv2d(cfg.width, cfg.img_channels, 3, padding=1, bias=True)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        chan = cfg.width
        for i, n in enumerate(cfg.enc_blocks):
            self.encoders.append(_stage(chan, n, cfg.heads[i], cfg.ffn_expansion))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, stride=2))  # strided conv, not pixel-unshuffle
            chan *= 2
        self.middle_blks = _stage(chan, cfg.middle_blocks, cfg.middle_heads, cfg.ffn_expansion)
        for i, n in enumerate(cfg.dec_blocks):
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(_stage(chan, n, cfg.heads[levels - 1 - i], cfg.ffn_expansion))
        # The authors pad to 2^levels * 4 (= 32 for 3 levels).
        self.size_multiple = (2**levels) * 4

    def encode(self, padded: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The encoder half: the deepest features (before the middle blocks) and each level's skip."""
        x = self.intro(padded)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        return x, skips

    def forward(self, inp: Tensor) -> Tensor:
        h, w = inp.shape[-2:]
        padded = pad_to_multiple(inp, self.size_multiple)
        x, skips = self.encode(padded)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips), strict=True):
            x = decoder(up(x) + skip)  # additive skip fusion, no concat
        x = self.ending(x) + padded  # global residual
        return x[..., :h, :w]


SPEC = ModelSpec(
    name="symunet",
    title="SymUNet",
    paper="Jiao et al., SymUNet, arXiv 2512.10581 (2025)",
    code="github.com/WenlongJiao/SymUNet @ c3f0aac (no licence file)",
    build=SymUNet,
    variants={
        "paper": SymUNetConfig(),
        "small": SymUNetConfig(width=16, enc_blocks=(1, 2, 2), middle_blocks=2, dec_blocks=(2, 2, 1)),
        "tiny": SymUNetConfig(width=8, enc_blocks=(1, 1, 1), middle_blocks=1, dec_blocks=(1, 1, 1), middle_heads=2),
    },
    params=22_288_827,
    size_multiple=32,
    precision=PrecisionPolicy(
        auto_cpu="bf16",
        bf16_max_abs_dev=0.0095,
        note=(
            "bf16 is the CPU default on CPUs with bf16 hardware, LayerNorm statistics in fp32 (checked with "
            "symunet-s, the same blocks: docs/models.md#precision); fp16 is untested, so not offered."
        ),
    ),
    weights={"aio3": "symunet-aio3.safetensors"},
    # The smallest tiles that match the whole image per task: docs/performance.md#tile-size-and-quality.
    min_tile={"haze": 512, "rain": 192, "noise": 384},
)

# SymUNet-S: the same architecture at width 16 with fewer blocks, the size this project can
# train on a 2-core CPU. Shipped under its own name so it is never mistaken for the paper model.
SMALL_SPEC = replace(
    SPEC,
    name="symunet-s",
    title="SymUNet-S (reduced width, airtool)",
    variants={"small": SPEC.variants["small"], "tiny": SPEC.variants["tiny"]},
    params=783_501,
    weights={"aio3": "symunet-s-aio3.safetensors"},
    # The smallest tiles that match the whole image per task: docs/performance.md#tile-size-and-quality.
    min_tile={"haze": 512, "rain": 384, "noise": 384},
    family="symunet",
    default_variant="small",
    notes="Width 16, encoder (1,2,2), middle 2, decoder (2,2,1): not the paper's configuration.",
)
