"""Pick the device (``--device``, ``train.device``). ``Runtime`` pairs it with the precision that
``engine/hardware/precision.py`` chose for it."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from airtool.errors import DeviceError
from airtool.precision import dtype_of


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16"

    @property
    def dtype(self) -> torch.dtype:
        return dtype_of(self.precision)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` = cuda (this rank's GPU under torchrun), then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available in this torch build")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) are visible")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("device 'mps' requested but MPS is not available")
    return device
