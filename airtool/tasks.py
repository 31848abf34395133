"""Degradation task labels shared by training, DaAIR's router and evaluation.

The index of a task is its integer label. The 3-task setting uses the first three,
the 5-task setting all five (all noise levels share the label "noise").
"""

from __future__ import annotations

TASKS: tuple[str, ...] = ("noise", "rain", "haze", "blur", "lowlight")
SETTINGS: dict[str, tuple[str, ...]] = {"aio3": TASKS[:3], "aio5": TASKS}


def task_index(name: str) -> int:
    from airtool.errors import UsageError

    try:
        return TASKS.index(name)
    except ValueError:
        raise UsageError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}") from None
