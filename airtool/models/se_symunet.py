"""SE-SymUNet: SymUNet with semantic guidance from a frozen CLIP ViT-L/14 image encoder.

Jiao et al., arXiv 2512.10581; code: WenlongJiao/SymUNet (``basicsr/models/archs/SymUNet_arch.py``,
class ``SESymUnet``, configured by ``options/train/AllInOne/symunet.yml``). The SymUNet backbone
(``airtool.models.symunet``) is unchanged. CLIP's token sequence z (257 x 1024 for ViT-L/14 at 224 px)
meets the image features in cross-attention pairs, at the middle and at every decoder level:

- *guide* (ImageGuidanceAttention): x <- x + alpha * unpatchify(CrossAttn(q = patches(x) + pos, kv = z));
- *refine* (TextRefinementAttention): z <- z + alpha * CrossAttn(q = z, kv = patches(x) + pos);

with pre-LayerNorm on query and context, bias-free q/k/v projections to ``inner_dim``, a biased
output projection, and alpha a learnable scalar initialised to 1e-4. Order: middle guide, middle
blocks, middle refine; then per decoder level: up + skip, guide, blocks, refine.

Module names follow the authors' so a state dict saved by their BasicSR code loads as it is:
``middle_guide_attention.attention.to_q.weight``, ``decoder_refine_attentions.2.alpha`` ...

Departures from the authors' code, all deliberate:

1. **Positional embeddings.** The authors create ``pos_embed`` inside ``forward`` with
   ``torch.randn`` whenever the token count changes; it is never trained and never saved (on the
   GPU it is a plain tensor), so every new image size gets a fresh random draw. Here it is drawn
   from the same N(0, 1), but as a *fixed field over the picture's token grid*, seeded once per
   module (``position_field``): the output is deterministic, the field the same on every device, and a tile
   gets the values the whole picture has at the same place (tiled inference passes each tile's
   ``origins``; a tile that does not start on the token grid gets the field from the token its
   origin falls in). Not part of the state dict, as in the authors' code; a ``pos_embed``
   their code saved (it becomes a parameter when run on a CPU) is ignored when loading.
2. **The frozen CLIP is not a submodule.** The authors load the whole ``CLIPModel`` (text tower
   included) as ``self.clip_model``, so their checkpoints carry ~428M frozen parameters. Here only
   the vision tower is loaded (``airtool.models.clip_encoder``), from a local path, and attached
   outside the module tree: ``parameters()``, ``state_dict()``, optimisers, EMA, DDP and exported
   weights see only the 67,432,643 trainable parameters. ``.to()`` still moves it. Their
   ``clip_model.*`` keys are split off when loading; their vision weights, when present, must equal
   the CLIP given with ``--clip`` (a different CLIP would make the trained layers meaningless).
3. **Per-image context.** ``image_context(image)`` runs CLIP once on the whole picture; tiled
   inference passes that context to every tile (``forward(tile, context=...)``), so all tiles see the
   whole image's semantics, as untiled inference does. Called without a context (training,
   evaluation), the model computes it from its own input, exactly as the authors' ``forward``.
4. The authors' two-stage training switch (``semantic_start_iter`` / ``current_iter``) calls methods
   that do not exist in their code; it is not reproduced (their YAML uses 0, i.e. one stage).
5. The fused ``F.scaled_dot_product_attention`` replaces the explicit softmax(q k^T * scale) v
   (same scale, (inner_dim / heads) ** -0.5); dropout (0.0 in the authors' code) is omitted.
6. The padding multiple is the least common multiple of what every level's patch size needs and the
   authors' 2^levels * 4; for the paper configuration both are 32.
7. The last decoder level's refine step is not run: its updated z is never read (also in the authors'
   code, so its parameters never get a gradient there either). They are kept, and counted, so the
   authors' checkpoints load; the output is unchanged.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from airtool.errors import UsageError, WeightsError
from airtool.models.blocks import pad_to_multiple
from airtool.models.spec import ModelSpec, PrecisionPolicy
from airtool.models.symunet import SymUNet, SymUNetConfig

ALPHA_INIT = 1e-4
Origins = Sequence[tuple[int, int]]  # per batch item: (top, left) of the tile in the picture, in pixels
AUTHORS_CLIP_PREFIX = "clip_model."


@dataclass(frozen=True)
class SESymUNetConfig:
    # The SymUNet backbone (same fields as SymUNetConfig).
    width: int = 48
    enc_blocks: tuple[int, ...] = (4, 6, 6)
    middle_blocks: int = 8
    dec_blocks: tuple[int, ...] = (6, 6, 4)  # deepest level first
    heads: tuple[int, ...] = (1, 2, 4)
    middle_heads: int = 8
    ffn_expansion: float = 2.66
    img_channels: int = 3
    # Semantic injection (the authors' train YAML). Per-level tuples are shallowest level first.
    semantic_dim: int = 1024  # CLIP ViT-L/14 hidden size
    cross_inner_dims: tuple[int, ...] = (1024, 1024, 1024)
    cross_heads: tuple[int, ...] = (1, 2, 4)
    patch_sizes: tuple[int, ...] = (4, 4, 4)
    middle_inner_dim: int = 1024
    middle_cross_heads: int = 8
    middle_patch_size: int = 2

    def backbone(self) -> SymUNetConfig:
        return SymUNetConfig(self.width, self.enc_blocks, self.middle_blocks, self.dec_blocks, self.heads,
                             self.middle_heads, self.ffn_expansion, self.img_channels)


def patchify(x: Tensor, p: int) -> Tensor:
    """(B, C, H, W) -> (B, (H/p)(W/p), C p p), patches row-major, each flattened (c, p1, p2)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // p) * (w // p), c * p * p)


def unpatchify(tokens: Tensor, c: int, h: int, w: int, p: int) -> Tensor:
    """Inverse of ``patchify`` for an image of shape (B, c, h, w)."""
    b = tokens.shape[0]
    x = tokens.reshape(b, h // p, w // p, c, p, p).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, h, w)


class CrossAttention(nn.Module):
    """Pre-norm multi-head cross-attention: Linear_out(softmax(q k^T / sqrt(d)) v), q from ``query``."""

    def __init__(self, query_dim: int, context_dim: int, inner_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm_query = nn.LayerNorm(query_dim)
        self.norm_context = nn.LayerNorm(context_dim)
        self.to_q = nn.Linear(query_dim, inner_dim, bias=False)
        self.to_k = nn.Linear(context_dim, inner_dim, bias=False)
        self.to_v = nn.Linear(context_dim, inner_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, query_dim))  # index 0, as the authors' Sequential

    def forward(self, query: Tensor, context: Tensor) -> Tensor:
        query, context = self.norm_query(query), self.norm_context(context)
        q, k, v = self.to_q(query), self.to_k(context), self.to_v(context)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        k, v = k.to(q.dtype), v.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v)  # scale (inner_dim / heads) ** -0.5
        return self.to_out(out.transpose(1, 2).flatten(2))


POSITION_BLOCK = 16  # the positional field is drawn in blocks of 16 x 16 tokens, one seed per block
POSITION_CACHE_MAX = 1 << 24  # keep the last field (training repeats it every step) only up to 64 MB


def position_field(seed: int, dim: int, top: int, left: int, rows: int, cols: int) -> Tensor:
    """Rows x cols x dim of a fixed N(0, 1) field over the token grid, starting at token (top, left).

    The field is drawn block by block from generators seeded by (seed, block row, block column), so
    any window of it costs about its own size, and a tile gets exactly the values the whole picture
    has at the same place (departure 1).
    """
    b = POSITION_BLOCK
    r0, c0 = top // b, left // b
    r1, c1 = (top + rows - 1) // b, (left + cols - 1) // b
    field = torch.empty((r1 - r0 + 1) * b, (c1 - c0 + 1) * b, dim)
    for br in range(r0, r1 + 1):
        for bc in range(c0, c1 + 1):
            generator = torch.Generator().manual_seed(_block_seed(seed, br, bc))
            field[(br - r0) * b : (br - r0 + 1) * b, (bc - c0) * b : (bc - c0 + 1) * b] = torch.randn(
                b, b, dim, generator=generator
            )
    return field[top - r0 * b : top - r0 * b + rows, left - c0 * b : left - c0 * b + cols]


def _block_seed(seed: int, row: int, col: int) -> int:
    """A well-mixed 32-bit seed: the CPU generator (mt19937) keeps only the low 32 bits of a seed."""
    digest = hashlib.blake2b(f"se-symunet/{seed}/{row}/{col}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


class _PatchCrossAttention(nn.Module):
    """Shared by guide and refine: patch geometry, alpha, and the fixed positional field.

    ``stride`` is how many picture pixels one token spans (2^level * patch size).
    """

    def __init__(self, image_dim: int, patch: int, stride: int, seed: int) -> None:
        super().__init__()
        self.patch_size = patch
        self.patch_dim = image_dim * patch * patch
        self.stride = stride
        self.seed = seed
        self.alpha = nn.Parameter(torch.tensor(ALPHA_INIT))
        self._cached: tuple[tuple, Tensor] | None = None

    @torch.compiler.disable  # Python-side RNG and caching: runs eagerly under --compile, never recompiled
    def positions(self, rows: int, cols: int, origins: Origins, device: torch.device) -> Tensor:
        """(B, rows * cols, patch_dim) positional noise for tiles whose top-left pixels are ``origins``."""
        starts = tuple((top // self.stride, left // self.stride) for top, left in origins)
        key = (rows, cols, starts, device)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        with torch.inference_mode(False), torch.no_grad():  # a normal tensor: usable when training too
            fields = [position_field(self.seed, self.patch_dim, t, left, rows, cols) for t, left in starts]
            noise = torch.stack(fields).flatten(1, 2).to(device)
        self._cached = (key, noise) if noise.numel() <= POSITION_CACHE_MAX else None
        return noise

    def patches_with_positions(self, x: Tensor, origins: Origins | None) -> Tensor:
        rows, cols = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        origins = origins if origins is not None else [(0, 0)] * x.shape[0]
        return patchify(x, self.patch_size) + self.positions(rows, cols, origins, x.device)


class ImageGuidance(_PatchCrossAttention):
    """x <- x + alpha * CrossAttn(patches(x) + pos, z), folded back to an image (authors' guide)."""

    def __init__(self, image_dim: int, semantic_dim: int, inner_dim: int, heads: int, patch: int, stride: int,
                 seed: int) -> None:
        super().__init__(image_dim, patch, stride, seed)
        self.attention = CrossAttention(self.patch_dim, semantic_dim, inner_dim, heads)

    def forward(self, x: Tensor, semantic: Tensor, origins: Origins | None = None) -> Tensor:
        update = self.attention(self.patches_with_positions(x, origins), semantic)
        return x + self.alpha * unpatchify(update, *x.shape[1:], self.patch_size).to(x.dtype)


class SemanticRefinement(_PatchCrossAttention):
    """z <- z + alpha * CrossAttn(z, patches(x) + pos) (authors' TextRefinementAttention)."""

    def __init__(self, semantic_dim: int, image_dim: int, inner_dim: int, heads: int, patch: int, stride: int,
                 seed: int) -> None:
        super().__init__(image_dim, patch, stride, seed)
        self.attention = CrossAttention(semantic_dim, self.patch_dim, inner_dim, heads)

    def forward(self, semantic: Tensor, x: Tensor, origins: Origins | None = None) -> Tensor:
        update = self.attention(semantic, self.patches_with_positions(x, origins))
        return semantic + self.alpha * update.to(semantic.dtype)


class _Frozen:
    """Holds the CLIP encoder outside the module tree (departure 2): a plain object, so
    ``nn.Module`` registers nothing. ``copy.deepcopy`` copies it like any attribute."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module


class SESymUNet(SymUNet):
    """SymUNet + CLIP semantic guidance (paper Sec. on SE-SymUNet; the authors' ``SESymUnet``)."""

    sparse_gradients = True  # the last refine (departure 7) is kept for its keys, never trained

    def __init__(self, cfg: SESymUNetConfig) -> None:
        super().__init__(cfg.backbone())
        self.cfg = cfg  # type: ignore[assignment]
        levels = len(cfg.enc_blocks)
        if not len(cfg.dec_blocks) == len(cfg.cross_inner_dims) == len(cfg.cross_heads) == len(cfg.patch_sizes) == levels:
            raise ValueError("dec_blocks, cross_inner_dims, cross_heads and patch_sizes need one entry per level")
        chan, sem = cfg.width * 2**levels, cfg.semantic_dim
        mid = (cfg.middle_inner_dim, cfg.middle_cross_heads, cfg.middle_patch_size, 2**levels * cfg.middle_patch_size)
        self.middle_guide_attention = ImageGuidance(chan, sem, *mid, seed=0)
        self.middle_refine_attention = SemanticRefinement(sem, chan, *mid, seed=1)
        self.decoder_guide_attentions, self.decoder_refine_attentions = nn.ModuleList(), nn.ModuleList()
        for i in range(levels):
            chan //= 2
            stage = levels - 1 - i  # the decoder runs deepest level first
            patch = cfg.patch_sizes[stage]
            level = (cfg.cross_inner_dims[stage], cfg.cross_heads[stage], patch, 2**stage * patch)
            self.decoder_guide_attentions.append(ImageGuidance(chan, sem, *level, seed=2 + 2 * i))
            self.decoder_refine_attentions.append(SemanticRefinement(sem, chan, *level, seed=3 + 2 * i))
        needs = [2**s * p for s, p in enumerate(cfg.patch_sizes)] + [2**levels * cfg.middle_patch_size]
        self.size_multiple = math.lcm(self.size_multiple, *needs)  # departure 6
        self._clip: _Frozen | None = None

    # -- the frozen CLIP encoder ---------------------------------------------------------------

    @property
    def clip(self) -> nn.Module | None:
        return self._clip.module if self._clip is not None else None

    def attach_clip(self, encoder: nn.Module, saved: dict[str, Tensor] | None = None) -> None:
        """Use ``encoder`` (frozen) for semantics; ``saved``: CLIP tensors a checkpoint carried."""
        if encoder.hidden_size != self.cfg.semantic_dim:
            raise WeightsError(
                f"the CLIP encoder has hidden size {encoder.hidden_size}, but this se-symunet expects "
                f"{self.cfg.semantic_dim} (CLIP ViT-L/14)"
            )
        if saved:
            _check_same_clip(encoder, saved)
        encoder.requires_grad_(False).eval()
        device = next(self.parameters()).device
        self._clip = _Frozen(encoder.to(device))

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> SESymUNet:
        super()._apply(fn, recurse)
        if self._clip is not None:  # .to(device / dtype / memory_format) moves the encoder too
            self._clip.module._apply(fn, recurse)
        return self

    def frozen_modules(self) -> list[nn.Module]:
        return [self._clip.module] if self._clip is not None else []

    def image_context(self, image: Tensor) -> Tensor:
        """CLIP's token sequence for whole pictures (B, 3, H, W) in [0, 1]: (B, tokens, semantic_dim)."""
        if self._clip is None:
            raise UsageError("se-symunet has no CLIP image encoder; pass --clip PATH or set AIRTOOL_CLIP")
        return self._clip.module(image)

    def split_state_dict(self, state: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(this network's tensors, the frozen CLIP's) from a checkpoint; drops the authors' pos_embed."""
        own = {k: v for k, v in state.items() if not k.startswith(AUTHORS_CLIP_PREFIX) and not k.endswith(".pos_embed")}
        clip = {k[len(AUTHORS_CLIP_PREFIX):]: v for k, v in state.items() if k.startswith(AUTHORS_CLIP_PREFIX)}
        return own, clip

    # -- the network -----------------------------------------------------------------------------

    def forward(self, inp: Tensor, context: Tensor | None = None, origins: Origins | None = None) -> Tensor:
        """``context``: the whole picture's CLIP tokens (default: computed from ``inp``); ``origins``:
        where each tile of the batch starts in its picture (default: (0, 0), a whole picture)."""
        z = self.image_context(inp) if context is None else context
        if z.shape[0] != inp.shape[0]:
            z = z.expand(inp.shape[0], -1, -1)  # one picture's context shared by a batch of its tiles
        h, w = inp.shape[-2:]
        padded = pad_to_multiple(inp, self.size_multiple)
        x, skips = self.encode(padded)
        x = self.middle_guide_attention(x, z, origins)
        x = self.middle_blks(x)
        z = self.middle_refine_attention(z, x, origins)
        stages = list(zip(self.decoders, self.ups, reversed(skips), self.decoder_guide_attentions,
                          self.decoder_refine_attentions, strict=True))
        for i, (decoder, up, skip, guide, refine) in enumerate(stages):
            x = decoder(guide(up(x) + skip, z, origins))
            if i < len(stages) - 1:  # departure 7: the last refine's z would never be read
                z = refine(z, x, origins)
        x = self.ending(x) + padded
        return x[..., :h, :w]


def _check_same_clip(encoder: nn.Module, saved: dict[str, Tensor]) -> None:
    """The checkpoint's own CLIP vision weights (authors' layout) must equal the encoder's."""
    mine = {_vision_key(k): v for k, v in encoder.vision.state_dict().items()}
    theirs = {_vision_key(k): v for k, v in saved.items() if k.startswith("vision_model.")}
    shared = sorted(set(mine) & set(theirs))
    if not theirs:
        return
    differ = [k for k in shared if mine[k].shape != theirs[k].shape
              or not torch.allclose(mine[k].float().cpu(), theirs[k].float(), rtol=1e-3, atol=1e-5)]
    if differ or not shared:
        what = ", ".join(differ[:3]) if differ else "no common keys"
        raise WeightsError(
            f"the weights were trained with a different CLIP than the one given with --clip ({what}); "
            "pass the CLIP those weights were trained with"
        )


def _vision_key(key: str) -> str:
    return key.removeprefix("vision_model.")


PAPER = SESymUNetConfig()
SPEC = ModelSpec(
    name="se-symunet",
    title="SE-SymUNet (CLIP ViT-L/14 semantic guidance)",
    paper="Jiao et al., SymUNet, arXiv 2512.10581 (2025)",
    code="github.com/WenlongJiao/SymUNet @ c3f0aac (no licence file)",
    build=SESymUNet,
    variants={
        "paper": PAPER,
        # For tests with a tiny random CLIP (hidden size 32): plumbing only, not a usable model.
        "tiny": SESymUNetConfig(width=8, enc_blocks=(1, 1, 1), middle_blocks=1, dec_blocks=(1, 1, 1), middle_heads=2,
                                semantic_dim=32, cross_inner_dims=(16, 16, 16), middle_inner_dim=16),
    },
    params=67_432_643,  # trainable; the frozen CLIP ViT-L/14 vision tower (303,179,776) is extra
    size_multiple=32,
    precision=PrecisionPolicy(
        auto_cpu="fp32",
        note=(
            "The CLIP encoder runs under the same precision as the network (autocast), once per picture, "
            "retried in fp32 if it gives NaN/Inf. bf16 is allowed but not the CPU default: there are no trained "
            "weights to measure what it costs."
        ),
    ),
    needs_clip=True,
    notes="Needs a local CLIP ViT-L/14 (--clip PATH or AIRTOOL_CLIP) and the 'semantic' extra (transformers).",
)

