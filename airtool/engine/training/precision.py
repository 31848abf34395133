"""How a training run computes: its precision (decided by ``engine/hardware/precision.py``, the
resolver restore uses too), the autocast context for it and the channels-last layout."""

from __future__ import annotations

import contextlib

import torch

from airtool.engine.hardware import precision as hardware_precision
from airtool.engine.training.config import LoopConfig
from airtool.models.spec import ModelSpec
from airtool.precision import autocast as precision_autocast


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context of a precision ``train_precision`` gave (fp32: none)."""
    return precision_autocast(device.type, precision)


def train_precision(loop: LoopConfig, spec: ModelSpec, device: torch.device) -> str:
    """The precision a run trains in: ``train.precision`` checked against the model's policy, or
    its ``auto`` choice for training (``resolve_precision``)."""
    return hardware_precision.resolve_precision(
        spec.precision, device, loop.precision, workload="training", model=spec.name)


def use_channels_last(loop: LoopConfig, device: torch.device) -> bool:
    """Channels-last activations: on by default on the CPU (oneDNN's native conv layout)."""
    return loop.channels_last if loop.channels_last is not None else device.type == "cpu"
