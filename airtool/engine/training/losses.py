"""Training losses: L1, the optional FFT-L1 of SymUNet/AnyIR, plus each model's aux losses.

As in their authors' training code, SymUNet and AnyIR train with L1 + 0.1·FFT-L1 (SymUNet on the
full ``fft2``, AnyIR/MoCE-IR on ``rfft2``); the FFT term is the mean absolute difference of the
stacked real and imaginary parts over H×W. Model-specific terms (DaAIR's router cross-entropy, NDR-Restore's
degradation L1) come from ``model.forward_train`` already weighted and are simply added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor


@dataclass(frozen=True)
class LossConfig:
    l1: float = 1.0
    fft: float = 0.0  # weight of FFT-L1; 0.1 for SymUNet and AnyIR
    fft_kind: Literal["fft2", "rfft2"] = "fft2"


def fft_l1(pred: Tensor, target: Tensor, kind: str = "fft2") -> Tensor:
    """Mean |FFT(pred) - FFT(target)| over real and imaginary parts, computed in float32."""
    transform = torch.fft.rfft2 if kind == "rfft2" else torch.fft.fft2
    fp = torch.view_as_real(transform(pred.float(), dim=(-2, -1)))
    ft = torch.view_as_real(transform(target.float(), dim=(-2, -1)))
    return (fp - ft).abs().mean()


def total_loss(
    cfg: LossConfig, pred: Tensor, target: Tensor, aux: dict[str, Tensor]
) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted sum of the configured terms and the model's aux losses, plus each named term."""
    parts: dict[str, Tensor] = {}
    if cfg.l1:
        parts["l1"] = cfg.l1 * (pred.float() - target.float()).abs().mean()
    if cfg.fft:
        parts["fft"] = cfg.fft * fft_l1(pred, target, cfg.fft_kind)
    for name, value in aux.items():
        parts[f"aux_{name}"] = value.float()
    if not parts:
        raise ValueError("no loss terms: set train.loss.l1 or train.loss.fft above 0")
    return torch.stack(list(parts.values())).sum(), parts
