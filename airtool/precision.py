"""The one table of precision names: the words users type (``--precision``, ``train.precision``,
``export --dtype``) and the torch dtype each stands for. Torch is imported only when a dtype is
asked for, so that ``import airtool`` stays light."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
_DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def dtype_of(precision: str) -> torch.dtype:
    """``"bf16"`` -> ``torch.bfloat16``; an unknown name raises ``KeyError`` naming the valid ones."""
    import torch

    if precision not in _DTYPE_NAMES:
        raise KeyError(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")
    return getattr(torch, _DTYPE_NAMES[precision])


def is_reduced(precision: str) -> bool:
    """True for the half-width floats, where autocast runs and NaN/Inf can appear."""
    return precision in PRECISIONS and precision != "fp32"


def autocast(device_type: str, precision: str):
    """The autocast context for ``precision`` on ``device_type``; fp32 (or the old ``none``) runs as is."""
    import contextlib

    import torch

    if precision in ("fp32", "none"):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=dtype_of(precision))
