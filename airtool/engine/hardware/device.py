"""Pick the device and the autocast dtype, honouring each model's precision policy."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from airtool.errors import DeviceError
from airtool.models.spec import PrecisionPolicy
from airtool.precision import PRECISIONS, dtype_of


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


def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX, where bf16 matrix products run in hardware.

    Elsewhere oneDNN emulates bf16 and it is slower than fp32, so ``auto`` stays fp32 there.
    ``AIRTOOL_CPU_BF16=0|1`` overrides the detection (torch's probes are private API).
    """
    override = os.environ.get("AIRTOOL_CPU_BF16")
    if override in ("0", "1"):
        return override == "1"
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve_precision(policy: PrecisionPolicy, device: torch.device, requested: str = "auto") -> str:
    if requested == "auto":
        choice = policy.auto(device.type)
        if device.type == "cpu" and choice == "bf16" and not cpu_has_native_bf16():
            return "fp32"
        return choice
    if requested not in PRECISIONS:
        raise DeviceError(f"unknown precision {requested!r}; use auto, fp32, bf16 or fp16")
    allowed = policy.allowed(device.type)
    if requested not in allowed:
        raise DeviceError(
            f"precision {requested} is not validated for this model on {device.type} (allowed: {', '.join(allowed)})"
        )
    return requested


def resolve(policy: PrecisionPolicy, device: str = "auto", precision: str = "auto") -> Runtime:
    dev = resolve_device(device)
    return Runtime(dev, resolve_precision(policy, dev, precision))
