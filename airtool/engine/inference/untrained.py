"""What ``restore`` does with a picture that looks like a degradation its weights were not
trained for (low light, blur: ``airtool.degradation_signs``).

Such weights do not leave those pictures alone: DaAIR takes a dark photo for rain and darkens it
further, with blotches. By default (``keep``) the picture is written unchanged, with a note that
says why; ``restore`` runs the model anyway, also with a note. ``tools/untrained_signs.py``
measured the signs on 727 clean, noisy, rainy and hazy photos: 2 false alarms, both low-key
photos that restoring would not improve either, so keeping costs little where they are wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from airtool.degradation_signs import SIGNS, looks_like
from airtool.errors import UsageError
from airtool.models.weights_info import WeightsInfo

CHOICES = ("keep", "restore")
DEFAULT = "keep"


def check_choice(choice: str) -> None:
    if choice not in CHOICES:
        raise UsageError(f"--untrained {choice!r}: choose {' or '.join(CHOICES)}")


@dataclass(frozen=True)
class Verdict:
    """The untrained tasks one picture looks like (task -> measurement) and what was done."""

    signs: dict[str, str] = field(default_factory=dict)
    keep: bool = False

    def notes(self) -> list[str]:
        if not self.signs:
            return []
        what = "; ".join(f"{task} ({why})" for task, why in self.signs.items())
        if self.keep:
            return [f"looks like {what}, which these weights were not trained for: kept unchanged "
                    "(--untrained restore restores it anyway)"]
        return [f"looks like {what}, which these weights were not trained for: restored anyway "
                "(--untrained keep leaves such pictures unchanged)"]

    def facts(self) -> dict[str, Any]:
        """For the file's ``--json`` record: ``untrained_signs`` and ``untrained`` (kept|restored)."""
        if not self.signs:
            return {}
        return {"untrained_signs": sorted(self.signs), "untrained": "kept" if self.keep else "restored"}


@dataclass(frozen=True)
class UntrainedCheck:
    """Checks pictures for the tasks in ``untrained`` that have a sign; ``choice`` keep|restore."""

    untrained: tuple[str, ...]
    choice: str = DEFAULT

    def judge(self, pixels: np.ndarray) -> Verdict:
        if not any(task in SIGNS for task in self.untrained):
            return Verdict()
        signs = {task: why for task, why in looks_like(pixels).items() if task in self.untrained}
        return Verdict(signs, keep=bool(signs) and self.choice == "keep")


def untrained_check(weights: WeightsInfo | None, choice: str) -> UntrainedCheck:
    """What to look for in each picture: the weights' untrained tasks that show a sign. With none
    (all trained, or not recorded) the choice cannot change a pixel and counts as ``restore``."""
    tasks = tuple(t for t in (weights.untrained_tasks if weights else ()) if t in SIGNS)
    return UntrainedCheck(tasks, choice if tasks else "restore")
