"""The one interface every restoration network has.

Inference calls ``forward(x)``, or ``forward(x, context=...)`` when the model's
``image_context`` returns one: a per-picture input (SE-SymUNet's CLIP tokens) computed once on the
whole picture and shared by all of its tiles. Training calls ``forward_train`` and, after each
optimiser step, ``after_step``; models with training-only parts (DaAIR's router loss and EMA
controller, NDR-Restore's degradation branch) override these, so ``airtool train`` needs no
per-model special case.
"""

from __future__ import annotations

from collections.abc import Callable

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

    #: True where a training step may leave some parameters without a gradient (DaAIR's top-1
    #: routed experts when no sample of the batch goes to one; SE-SymUNet's last refine block,
    #: kept for the authors' key names but never read). DDP must then look for them in
    #: every step (``find_unused_parameters``), an extra pass over the autograd graph; models
    #: that always use every parameter keep False and skip it.
    sparse_gradients: bool = False

    #: Optional method ``image_context(image) -> Tensor``: what every tile of a picture (1, 3, H, W)
    #: needs from the whole picture. ``None`` (the default): the model needs nothing, and the
    #: inference engine does no extra work for it.
    image_context: Callable[[Tensor], Tensor] | None = None

    def split_state_dict(self, state: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(tensors this network loads, tensors of parts loaded from elsewhere) from a checkpoint."""
        return state, {}

    def frozen_modules(self) -> list[nn.Module]:
        """Never-trained parts held outside ``parameters()`` (SE-SymUNet's CLIP); a copy of the model
        made for evaluation may share them (``copy.deepcopy(model, {id(m): m ...})``)."""
        return []

    def inference_modules(self) -> nn.Module:
        """The part that runs at inference (training-only helpers excluded)."""
        return self

    def degradation_heads(self) -> tuple[list[nn.Module], tuple[str, ...]]:
        """Modules whose outputs are degradation logits (B, T) for the T task labels given.

        A model that predicts the degradation (DaAIR's routers) returns them, and ``restore``
        reports per image what they saw (``airtool.engine.inference.degradation``). Default: none.
        """
        return [], ()
