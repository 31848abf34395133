"""DaAIR: efficient degradation-aware all-in-one image restoration.

Zamfir, Wu, Mehta, Tan, Paudel, Zhang, Timofte, "Efficient Degradation-aware Any Image
Restoration", arXiv 2405.15475 (2024). The authors never released code
(``eduardzamfir/DaAIR`` holds a README only), so this is an implementation from the paper text
and its overview figure (Fig. 3). Nothing here is copied from any codebase.

Architecture (paper Sec. 3, Fig. 3):

* A Restormer-style 4-level U-Net: 3x3 conv shallow features, three encoder levels and a
  latent level (channels C, 2C, 4C, 8C), three decoder levels. Skips are fused by concat and a
  1x1 conv at every decoder level, so decoder level 1 runs at C (unlike Restormer's 2C).
* Encoder block: ``x = x + MDTA(DaLe(LN(x)))``; ``x = x + GDFN(LN(x))``.
* Decoder block: ``x = x + CrossAttn(q, v <- DaLe(LN(x)); k <- Controller(LN(x)))``;
  ``x = x + GDFN(LN(x))`` (Sec. 3.2).
* DaLe, the Degradation-aware Learner (Sec. 3.1, Eqs. 1-3): low-rank experts of a shared design
  (1x1 down-projection C -> C/r, 1x1, Conv2Former-style ``z * DWConv_k(z)``, 1x1); an agnostic
  expert sees the whole batch, one specialised expert per degradation sees only the sub-batch
  the router sends it (top-1 sparse routing). ``x_hat = Proj_up(E_D^i(x) * E_A(x))``.
* Router: trained with an auxiliary degradation-classification cross-entropy (Sec. 3.1,
  "Routing"; Fig. 6).
* Controller E_C (decoder only, Sec. 3.2): same design as E_A, never trained by gradients; after
  every optimiser step ``theta_C <- beta * theta_C + (1 - beta) * theta_A`` from the encoder's
  agnostic expert at the same level.

Training-only parts are reached only through ``forward_train`` (router loss) and ``after_step``
(controller EMA). ``forward`` routes every image by the router's own top-1 decision.

Choices where the paper is silent
---------------------------------
Our text of the paper lost every number of its method section, so each item below is airtool's
choice unless marked otherwise:

1. Width and depth: dim 24, blocks (2, 4, 4, 6) for encoder levels 1-3 and the latent level,
   the decoder reusing the encoder counts (4, 4, 2 from deepest up), heads (1, 2, 4, 8), GDFN
   expansion 2.66, rank ratio r = 4, depthwise kernel k = 7. This gives 5,631,502 parameters
   (T = 3) and 5,931,890 (T = 5), against the paper's "6M" for both.
2. No refinement stage. Sec. 3 once says the global residual reaches "the output of the
   refinement stage" (and Appendix A does not list its removal from Restormer), but Fig. 3
   draws none; we follow the figure. The parameter count cannot settle it:
   Restormer's four refinement blocks at C = 24 would add only ~35k parameters.
   Output = ``conv3x3(decoder_1 + shallow features) + input``: the figure's feature-level
   global residual plus an image-level residual, which costs nothing.
3. Restormer conventions where the figure shows no detail: WithBias LayerNorm, no bias in any
   convolution, pixel-(un)shuffle down/upsampling, 1x1 skip-fusion convs, input padded by
   reflection to a multiple of 8 and cropped back.
4. Expert body (Fig. 3): ``1x1 C->C_R``, ``1x1 C_R->C_R`` giving z, ``z * DWConv_k(z)``,
   ``1x1 C_R->C_R``, with C_R = C / r. No GELU inside the modulation: the product is already
   non-linear. Every expert (and the controller) has its own down-projection.
5. Router: global average pool of the normalised input -> Linear(C -> T, with bias) -> softmax
   -> top-1. One router per DaLe, i.e. per block, decoder blocks included. Routers run in fp32
   even under autocast, so reduced precision cannot flip a near-tied decision.
6. Sparse routing follows the sparse-MoE works the paper cites (Shazeer et al. 2017; Riquelme et
   al. 2021): the chosen expert's output is scaled by its router probability, so the router also
   receives gradient from the restoration loss. Routing uses the router's decision in training
   as well as at inference (the paper's Fig. 6 discussion of "randomised routing" without the
   auxiliary loss only makes sense if so); the labels enter only through the auxiliary loss.
7. Auxiliary loss: cross-entropy of every router's logits against the degradation label,
   averaged over all routers, weight 0.01. All noise levels share the label "noise"
   (``airtool.tasks``); T = 3 (noise, rain, haze) or T = 5 (+ blur, low-light).
8. Cross-attention in the decoder: MDTA-style channel attention (Restormer base). q and v from
   the DaLe output x_hat (one 1x1 C->2C + depthwise 3x3), k from the controller features
   x_C = Proj(C_R->C)(E_C(LN(x))) (1x1 + depthwise 3x3), per-head temperature, 1x1 output.
   Proj(C_R->C) of the controller is trained by gradients; only E_C itself is EMA-updated
   (its parameters have ``requires_grad=False``, but gradient still flows through it to LN(x)).
9. EMA: beta = 0.999; every decoder block of a level takes the last encoder block's E_A of the
   same level as its source; E_C starts as a copy of its source (as a momentum teacher does),
   so the first steps already use a meaningful key branch. The latent level has no decoder
   and therefore no controller. Controllers are saved in the state dict like any weight.
10. Training: a step where some expert receives no sample leaves its parameters without a
   gradient (that is what sparse routing means), so DDP needs ``find_unused_parameters=True``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from airtool.errors import UsageError
from airtool.models.base import RestorationNet
from airtool.models.blocks import GDFN, MDTA, Downsample, LayerNorm2d, Upsample, pad_to_multiple
from airtool.models.spec import ModelSpec, PrecisionPolicy
from airtool.tasks import TASKS


@dataclass(frozen=True)
class DaAIRConfig:
    dim: int = 24
    blocks: tuple[int, ...] = (2, 4, 4, 6)  # encoder levels 1-3, then the latent level
    heads: tuple[int, ...] = (1, 2, 4, 8)  # per level; decoders reuse the encoder's
    ffn_expansion: float = 2.66
    rank_ratio: int = 4  # C_R = C / r for every expert (Sec. 4, "Implementation Details")
    kernel_size: int = 7  # depthwise kernel of the Conv2Former-style modulation
    num_tasks: int = 3  # T: one specialised expert per degradation
    ema_beta: float = 0.999  # controller EMA factor (Sec. 3.2)
    aux_weight: float = 0.01  # router cross-entropy weight
    img_channels: int = 3


def _conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, bias=False)


def _dwconv(channels: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels, bias=False)


class Expert(nn.Module):
    """Low-rank expert (Sec. 3.1, "Expert design"): (B, C, H, W) -> (B, C_R, H, W)."""

    def __init__(self, dim: int, rank: int, kernel: int) -> None:
        super().__init__()
        self.proj = _conv1x1(dim, rank)  # W_down: into the low-rank space
        self.pw = _conv1x1(rank, rank)
        self.dw = _dwconv(rank, kernel)  # large-kernel modulation (Conv2Former, Hou et al.)
        self.out = _conv1x1(rank, rank)

    def forward(self, x: Tensor) -> Tensor:
        z = self.pw(self.proj(x))
        return self.out(z * self.dw(z))


class Router(nn.Module):
    """Degradation classifier: GAP -> Linear(C -> T); returns fp32 logits (B, T).

    It runs in fp32 even under autocast: it costs nothing, and a bf16 rounding must not flip a
    near-tied top-1 decision (which would swap a whole expert's output).
    """

    def __init__(self, dim: int, num_tasks: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, num_tasks)

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast("cuda" if x.is_cuda else "cpu", enabled=False):
            return self.fc(x.float().mean(dim=(2, 3)))


class DaLe(nn.Module):
    """Degradation-aware Learner (Sec. 3.1, Eqs. 1-3).

    ``forward(x)`` with x the normalised features (B, C, H, W) returns the degradation-aware
    features x_hat (B, C, H, W) and the router logits (B, T).
    """

    def __init__(self, dim: int, rank: int, kernel: int, num_tasks: int) -> None:
        super().__init__()
        self.router = Router(dim, num_tasks)
        self.agnostic = Expert(dim, rank, kernel)  # E_A
        self.experts = nn.ModuleList(Expert(dim, rank, kernel) for _ in range(num_tasks))  # E_D^i
        self.proj_up = _conv1x1(rank, dim)  # shared up-projection after the merge

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.router(x)
        gate, choice = logits.softmax(dim=-1).max(dim=-1)  # top-1 routing
        specific = self.dispatch(x, choice, gate)
        return self.proj_up(specific * self.agnostic(x)), logits

    @torch.compiler.disable
    def dispatch(self, x: Tensor, choice: Tensor, gate: Tensor) -> Tensor:
        """Run each specialised expert on its own sub-batch, then merge back in batch order.

        ``choice`` (B,) holds expert indices and ``gate`` (B,) their router probabilities.
        The sub-batch sizes depend on the data, so torch.compile leaves this method eager (it
        failed in inductor on torch 2.13 with those sizes symbolic) and compiles what surrounds it.
        """
        order = torch.argsort(choice, stable=True)
        counts = torch.bincount(choice, minlength=len(self.experts)).tolist()
        groups = torch.split(x.index_select(0, order), counts)
        outs = [expert(g) for expert, g, n in zip(self.experts, groups, counts, strict=True) if n > 0]
        merged = torch.cat(outs).index_select(0, torch.argsort(order))
        return merged * gate.to(merged.dtype).view(-1, 1, 1, 1)


class CrossMDTA(nn.Module):
    """Channel cross-attention: q and v from x_hat, k from the controller features (Sec. 3.2)."""

    attend = MDTA.attend  # Restormer's transposed attention; reads num_heads and temperature

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qv = _conv1x1(dim, 2 * dim)
        self.qv_dwconv = _dwconv(2 * dim, 3)
        self.k = _conv1x1(dim, dim)
        self.k_dwconv = _dwconv(dim, 3)
        self.project_out = _conv1x1(dim, dim)

    def forward(self, x_hat: Tensor, x_ctrl: Tensor) -> Tensor:
        q, v = self.qv_dwconv(self.qv(x_hat)).chunk(2, dim=1)
        k = self.k_dwconv(self.k(x_ctrl))
        return self.project_out(self.attend(q, k, v))


class EncoderBlock(nn.Module):
    """``x + MDTA(DaLe(LN(x)))``, then ``x + GDFN(LN(x))``; returns (x, router logits)."""

    def __init__(self, cfg: DaAIRConfig, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim)
        self.dale = DaLe(dim, dim // cfg.rank_ratio, cfg.kernel_size, cfg.num_tasks)
        self.attn = MDTA(dim, heads)
        self.norm2 = LayerNorm2d(dim)
        self.ffn = GDFN(dim, cfg.ffn_expansion)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x_hat, logits = self.dale(self.norm1(x))
        x = x + self.attn(x_hat)
        return x + self.ffn(self.norm2(x)), logits


class DecoderBlock(nn.Module):
    """``x + CrossAttn(DaLe(LN(x)), Controller(LN(x)))``, then ``x + GDFN(LN(x))``."""

    def __init__(self, cfg: DaAIRConfig, dim: int, heads: int) -> None:
        super().__init__()
        rank = dim // cfg.rank_ratio
        self.norm1 = LayerNorm2d(dim)
        self.dale = DaLe(dim, rank, cfg.kernel_size, cfg.num_tasks)
        self.controller = Expert(dim, rank, cfg.kernel_size).requires_grad_(False)  # E_C: EMA only
        self.controller_proj = _conv1x1(rank, dim)  # Proj(C_R -> C) giving x_C
        self.attn = CrossMDTA(dim, heads)
        self.norm2 = LayerNorm2d(dim)
        self.ffn = GDFN(dim, cfg.ffn_expansion)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = self.norm1(x)
        x_hat, logits = self.dale(y)
        x = x + self.attn(x_hat, self.controller_proj(self.controller(y)))
        return x + self.ffn(self.norm2(x)), logits


def _run(stage: nn.ModuleList, x: Tensor, logits: list[Tensor]) -> Tensor:
    for block in stage:
        x, block_logits = block(x)
        logits.append(block_logits)
    return x


class DaAIR(RestorationNet):
    """4-level U-Net with DaLe experts and EMA controllers (paper Fig. 3)."""

    sparse_gradients = True  # top-1 routing: an expert no sample is sent to gets no gradient

    def __init__(self, cfg: DaAIRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        *enc_blocks, latent_blocks = cfg.blocks
        dims = [cfg.dim * 2**i for i in range(len(cfg.blocks))]
        self.patch_embed = nn.Conv2d(cfg.img_channels, cfg.dim, 3, padding=1, bias=False)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        for level, n in enumerate(enc_blocks):
            self.encoders.append(nn.ModuleList(EncoderBlock(cfg, dims[level], cfg.heads[level]) for _ in range(n)))
            self.downs.append(Downsample(dims[level]))
        self.latent = nn.ModuleList(EncoderBlock(cfg, dims[-1], cfg.heads[-1]) for _ in range(latent_blocks))
        self.ups, self.reduces, self.decoders = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(len(enc_blocks))):  # deepest decoder first
            self.ups.append(Upsample(dims[level + 1]))
            self.reduces.append(_conv1x1(2 * dims[level], dims[level]))  # concat skip -> C
            blocks = (DecoderBlock(cfg, dims[level], cfg.heads[level]) for _ in range(enc_blocks[level]))
            self.decoders.append(nn.ModuleList(blocks))
        self.output = nn.Conv2d(cfg.dim, cfg.img_channels, 3, padding=1, bias=False)
        self.size_multiple = 2 ** len(enc_blocks)
        self.sync_controllers()

    def forward(self, inp: Tensor) -> Tensor:
        return self._restore(inp)[0]

    def forward_train(
        self, degraded: Tensor, clean: Tensor, task: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Restored batch and, when labels are given, ``{"router_ce": aux_weight * mean CE}``."""
        restored, logits = self._restore(degraded)
        if task is None:
            return restored, {}
        return restored, {"router_ce": self.cfg.aux_weight * self.router_loss(logits, task)}

    def router_loss(self, logits: list[Tensor], task: Tensor) -> Tensor:
        """Degradation-classification cross-entropy averaged over every router (Sec. 3.1)."""
        task = task.to(device=logits[0].device, dtype=torch.long)
        if task.min() < 0 or task.max() >= self.cfg.num_tasks:
            raise UsageError(
                f"task label {int(task.max())} is outside this DaAIR variant's {self.cfg.num_tasks} experts; "
                "use the 'paper5' variant for 5-task data"
            )
        return torch.stack([F.cross_entropy(lg, task) for lg in logits]).mean()

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """EMA controller update (Sec. 3.2): theta_C <- beta * theta_C + (1 - beta) * theta_A."""
        beta = self.cfg.ema_beta
        for controller, source in self.controller_sources():
            for p_c, p_a in zip(controller.parameters(), source.parameters(), strict=True):
                p_c.mul_(beta).add_(p_a.detach(), alpha=1.0 - beta)

    @torch.no_grad()
    def sync_controllers(self) -> None:
        """Copy every controller from its EMA source (used at construction)."""
        for controller, source in self.controller_sources():
            controller.load_state_dict(source.state_dict())

    def controller_sources(self) -> Iterator[tuple[Expert, Expert]]:
        """(E_C of a decoder block, E_A of the last encoder block at the same level)."""
        for encoder, decoder in zip(reversed(self.encoders), self.decoders, strict=True):
            source = encoder[-1].dale.agnostic
            for block in decoder:
                yield block.controller, source

    def degradation_heads(self) -> tuple[list[nn.Module], tuple[str, ...]]:
        """Every block's router (Sec. 3.1): each classifies the degradation into the T tasks."""
        return [m for m in self.modules() if isinstance(m, Router)], TASKS[: self.cfg.num_tasks]

    def _restore(self, inp: Tensor) -> tuple[Tensor, list[Tensor]]:
        h, w = inp.shape[-2:]
        padded = pad_to_multiple(inp, self.size_multiple)
        logits: list[Tensor] = []
        shallow = self.patch_embed(padded)
        x, skips = shallow, []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            x = _run(encoder, x, logits)
            skips.append(x)
            x = down(x)
        x = _run(self.latent, x, logits)
        for up, reduce, decoder, skip in zip(self.ups, self.reduces, self.decoders, reversed(skips), strict=True):
            x = _run(decoder, reduce(torch.cat([up(x), skip], dim=1)), logits)
        out = self.output(x + shallow) + padded  # feature- and image-level global residuals
        return out[..., :h, :w], logits


SPEC = ModelSpec(
    name="daair",
    title="DaAIR",
    paper="Zamfir et al., Efficient Degradation-aware Any Image Restoration, arXiv 2405.15475 (2024)",
    code="airtool (first public implementation; the authors released no code)",
    build=DaAIR,
    variants={
        "paper": DaAIRConfig(),
        "paper5": DaAIRConfig(num_tasks=5),
        "tiny": DaAIRConfig(dim=8, blocks=(1, 1, 1, 1)),
    },
    params=5_631_502,
    size_multiple=8,
    precision=PrecisionPolicy(
        auto_cpu="bf16",
        bf16_max_abs_dev=0.00996,
        note=(
            "bf16 is the CPU default on CPUs with bf16 hardware, routers and LayerNorm statistics in fp32 "
            "(docs/models.md#precision); fp16 is untested, so not offered."
        ),
    ),
    weights={"aio3": "daair-aio3.safetensors"},
    # The smallest tiles that match the whole image per task: docs/performance.md#tile-size-and-quality.
    min_tile={"haze": 448, "rain": 384, "noise": 128},
    notes="Hyper-parameters are ours where the paper lost them; see the module docstring.",
)
