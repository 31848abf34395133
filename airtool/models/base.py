"""The one interface every restoration network has.

Inference only ever calls ``forward(x)``. Training calls ``forward_train`` and, after each
optimiser step, ``after_step``; models with training-only parts (DaAIR's router loss and EMA
controller, NDR-Restore's degradation branch) override these, so ``airtool train`` needs no
per-model special case.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RestorationNet(nn.Module):
    """Image in, image out: (B, 3, H, W) in [0, 1] -> (B, 3, H, W), any H and W."""

    def forward_train(
        self, degraded: Tensor, clean: Tensor, task: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Restored batch plus named auxiliary losses (already weighted) for this step.

        ``task`` holds one integer degradation label per sample (see ``airtool.tasks``).
        """
        return self(degraded), {}

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """Hook run after each optimiser step (EMA-updated parts live here)."""

    def inference_modules(self) -> nn.Module:
        """The part that runs at inference (training-only helpers excluded)."""
        return self

    def degradation_heads(self) -> tuple[list[nn.Module], tuple[str, ...]]:
        """Modules whose outputs are degradation logits (B, T) for the T task labels given.

        A model that predicts the degradation (DaAIR's routers) returns them, and ``restore``
        reports per image what they saw (``airtool.engine.degradation``). Default: none.
        """
        return [], ()
