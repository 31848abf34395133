"""How a training run computes: the autocast precision (the requested one, checked against the
model's policy, or the ``auto`` choice per device and model) and the channels-last layout."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from airtool.engine.training.config import LoopConfig
from airtool.errors import ConfigError
from airtool.precision import autocast as precision_autocast


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CPU or GPU, fp16 on GPU only; fp32 (or the old ``none``) = no autocast."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"train.precision: fp16 needs a CUDA device, not {device.type}; use bf16 or fp32")
    return precision_autocast(device.type, precision)


def requested_precision(loop: LoopConfig) -> str:
    """``train.precision``, or the old ``train.amp`` spelling of it (``none`` = fp32)."""
    if loop.amp is None:
        return loop.precision
    legacy = "fp32" if loop.amp == "none" else loop.amp
    if loop.precision not in ("auto", legacy):
        raise ConfigError(f"train.amp: {loop.amp} contradicts train.precision: {loop.precision}; set only precision")
    return legacy


# bf16 training on a CPU pays only where its matrix units run bf16 natively AND the model's
# backward kernels take that path; measured per model with tools/bench_train.py
# (docs/performance.md#training). Models absent here train in fp32 under ``auto`` on the CPU.
CPU_BF16_TRAINING: frozenset[str] = frozenset()


def train_precision(loop: LoopConfig, spec: Any, device: torch.device) -> str:
    """The precision a run trains in: the requested one, checked against the model's policy
    (models/spec.py), or for ``auto`` bf16 on CUDA where allowed, and on a CPU only for models
    measured faster in bf16 on CPUs with native bf16 (``CPU_BF16_TRAINING``); else fp32."""
    from airtool.engine.hardware.device import cpu_has_native_bf16

    precision = requested_precision(loop)
    allowed = spec.precision.allowed(device.type)
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if "bf16" in allowed else "fp32"
        fast = device.type == "cpu" and spec.name in CPU_BF16_TRAINING and cpu_has_native_bf16()
        return "bf16" if fast and "bf16" in allowed else "fp32"
    autocast(device, precision)
    if precision != "fp32" and precision not in allowed:
        raise ConfigError(
            f"train.precision: {precision} is not validated for {spec.name} on {device.type} "
            f"(allowed: {', '.join(allowed)})"
        )
    return precision


def use_channels_last(loop: LoopConfig, device: torch.device) -> bool:
    """Channels-last activations: on by default on the CPU (oneDNN's native conv layout)."""
    return loop.channels_last if loop.channels_last is not None else device.type == "cpu"
