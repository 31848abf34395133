"""A per-image degradation report from models that predict the degradation themselves.

DaAIR routes every block's features by a degradation classifier (paper Sec. 3.1, its
"router", trained with a cross-entropy on the degradation label). ``DegradationProbe``
listens to those classifiers (forward hooks, so the model's ``forward`` is unchanged) while an
image is restored, tile by tile, and averages their probabilities over every classifier and
tile. A model offers this by returning its classifier modules from ``degradation_heads()``
(``RestorationNet``'s default: none).

The classifiers only choose among the tasks the weights were trained on: a clean, blurred or
low-light photo still gets one of those labels (see the README).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


class DegradationProbe:
    def __init__(self, model: nn.Module) -> None:
        heads, self.labels = getattr(model, "degradation_heads", lambda: ([], ()))()
        self.heads = len(heads)
        self._sum: Tensor | None = None
        self._count = 0
        self._handles = [head.register_forward_hook(self._hook) for head in heads] if self.labels else []

    @property
    def enabled(self) -> bool:
        return bool(self._handles)

    def reset(self) -> None:
        self._sum, self._count = None, 0

    def _hook(self, module: nn.Module, inputs: Any, logits: Tensor) -> None:
        probs = logits.detach().float().softmax(dim=-1)
        total = probs.sum(dim=0).cpu()
        self._sum = total if self._sum is None else self._sum + total
        self._count += probs.shape[0]

    def report(self) -> dict[str, Any] | None:
        """``{"predicted": label, "probabilities": {label: p}, "heads": n}`` for the image since ``reset``."""
        if self._sum is None or not self._count:
            return None
        mean = (self._sum / self._count).tolist()
        probabilities = {label: round(p, 4) for label, p in zip(self.labels, mean, strict=True)}
        predicted = max(probabilities, key=probabilities.get)
        return {"predicted": predicted, "probabilities": probabilities, "heads": self.heads}

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
