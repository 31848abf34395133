"""What updates the weights: the Adam(W) optimiser and its implementation choice, the learning-rate
schedule (warm-up, cosine / multistep / constant) and the EMA of the model's state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from airtool.engine.train_config import OptimConfig, ScheduleConfig


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


def build_scheduler(cfg: ScheduleConfig, optimizer: torch.optim.Optimizer, steps: int) -> Any:
    """PyTorch's own schedulers, stepped once per optimiser step (not per epoch)."""
    from torch.optim import lr_scheduler as sch

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
