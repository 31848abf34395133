"""What updates the weights: the Adam(W) optimiser and its implementation choice, the learning-rate
schedule (warm-up, cosine / multistep / constant) and the EMA of the model's state."""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import partial
from typing import Any

import torch
from torch import nn

from airtool.engine.training.config import OptimConfig, ScheduleConfig


def optimizer_impl(cfg: OptimConfig, device: torch.device) -> dict[str, bool]:
    """The keyword that selects PyTorch's Adam(W) implementation; all compute the same update."""
    impl = cfg.impl
    if impl == "auto":
        impl = "fused" if device.type in ("cuda", "cpu") else "foreach"
    return {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[impl]


def build_optimizer(
    cfg: OptimConfig, params: Iterator[nn.Parameter], device: torch.device | None = None
) -> torch.optim.Optimizer:
    kind = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    impl = optimizer_impl(cfg, device or torch.device("cpu"))
    return kind(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **impl)


def cosine_factor(cfg: ScheduleConfig, steps: int, peak_lr: float, step: int) -> float:
    """The learning rate at ``step`` as a share of the peak, in closed form: linear warm-up, a
    cosine to ``min_lr`` over the horizon (held there after it), times the re-warm ramp of a
    fresh optimiser. A pure function of the step, so a resumed run continues it exactly."""
    horizon, warmup = max(1, cfg.horizon or steps), cfg.warmup_steps
    if step < warmup:
        factor = cfg.warmup_start_factor + (1.0 - cfg.warmup_start_factor) * step / warmup
    else:
        progress = min(1.0, (step - warmup) / max(1, horizon - warmup))
        floor = cfg.min_lr / peak_lr
        factor = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.rewarm_at is not None and cfg.rewarm_steps > 0 and step >= cfg.rewarm_at:
        factor *= min(1.0, (step - cfg.rewarm_at + 1) / cfg.rewarm_steps)
    return factor


def build_scheduler(cfg: ScheduleConfig, optimizer: torch.optim.Optimizer, steps: int) -> Any:
    """PyTorch's own schedulers, stepped once per optimiser step (not per epoch); a cosine with
    a re-warm ramp (``rewarm_steps``) is a ``LambdaLR`` over ``cosine_factor``."""
    from torch.optim import lr_scheduler as sch

    if cfg.name == "cosine" and cfg.rewarm_steps > 0:
        peak = optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"])
        return sch.LambdaLR(optimizer, partial(cosine_factor, cfg, steps, peak))
    warmup = cfg.warmup_steps
    if cfg.name == "cosine":
        span = max(1, (cfg.horizon or steps) - warmup)
        main: Any = sch.CosineAnnealingLR(optimizer, T_max=span, eta_min=cfg.min_lr)
    elif cfg.name == "multistep":
        main = sch.MultiStepLR(optimizer, milestones=[m - warmup for m in cfg.milestones], gamma=cfg.gamma)
    else:
        main = sch.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warmup <= 0:
        return main
    ramp = sch.LinearLR(optimizer, start_factor=cfg.warmup_start_factor, end_factor=1.0, total_iters=warmup)
    return sch.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


class Ema:
    """Exponential moving average of a model's state (floating tensors averaged, others copied)."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True) -> None:
        self.decay, self.warmup = decay, warmup
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay
        for key, value in model.state_dict().items():
            avg = self.state[key]
            if avg.dtype.is_floating_point:
                avg.lerp_(value.detach(), 1.0 - decay)
            else:
                avg.copy_(value)
