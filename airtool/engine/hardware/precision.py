"""``--precision`` and ``train.precision``: the one place where a run's precision is decided.

restore, evaluate and bench (through ``load_restorer`` and ``Restorer.with_precision``) and
training (``engine/training/precision.py``) all ask ``resolve_precision``. It reads what each
model declares (``PrecisionPolicy`` in ``models/spec.py``: the precisions validated per device
and the ``auto`` choice) and the names table (``airtool/precision.py``).

A named precision is checked against the policy for the device. ``auto``:

- inference: the policy's choice, except that on a CPU bf16 is taken only where its matrix units
  run bf16 natively (elsewhere it is emulated, slower than fp32) and, when the caller can time a
  pass (``CpuTiming``), only where bf16 measured at most ``FASTER`` of fp32's time. Native bf16
  does not make bf16 fast everywhere (docs/performance.md#bf16-or-fp32-on-the-cpu), so the answer
  is measured once and kept per CPU, torch version, thread count and model in
  ``$XDG_CACHE_HOME/airtool/cpu-precision.json`` (unless other work disturbed the timing).
  ``AIRTOOL_CPU_BF16=1`` takes bf16 unmeasured,
  ``=0`` takes fp32.
- training: bf16 on CUDA where the policy allows it, else fp32. On a CPU, bf16 training is chosen
  explicitly (``train.precision: bf16``) until a measured per-CPU choice exists for training too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

from airtool.engine.hardware import timing_cache
from airtool.errors import ConfigError, DeviceError
from airtool.models.spec import PrecisionPolicy
from airtool.precision import PRECISIONS

Workload = Literal["inference", "training"]
CACHE_NAME = "cpu-precision.json"
PROBE_SIDE = 192  # the square pass timed at each precision
FASTER = 0.9  # bf16 must take at most this share of fp32's time (timing noise on a shared CPU)
OVERRIDE = "AIRTOOL_CPU_BF16"


class PassTime(NamedTuple):
    """One timed pass: its seconds, and whether other work took the CPUs meanwhile
    (``cpu_share.disturbed``), which makes the seconds measure the load, not the precision."""

    seconds: float
    disturbed: bool = False


@dataclass(frozen=True)
class CpuTiming:
    """What the measured CPU choice needs from a caller that holds the model: the key its answer
    is kept under (what it depends on: CPU, torch, threads, model) and one warm ``PROBE_SIDE``
    pass timed at a given precision. Both are called only when a measurement is due."""

    key: Callable[[], str]
    seconds: Callable[[str], PassTime]


def resolve_precision(
    policy: PrecisionPolicy,
    device: torch.device,
    requested: str = "auto",
    *,
    workload: Workload = "inference",
    model: str = "this model",
    measure: CpuTiming | None = None,
) -> str:
    """The precision (``fp32``, ``bf16`` or ``fp16``) to compute in on ``device``: ``requested``
    checked against ``policy``, or the ``auto`` choice for ``workload`` (module docstring).

    A refused name raises ``DeviceError`` for inference, ``ConfigError`` naming
    ``train.precision`` for training; ``model`` is the name those messages give.
    """
    if requested != "auto":
        return _checked(policy, device, requested, workload, model)
    if workload == "training":
        return "bf16" if device.type == "cuda" and "bf16" in policy.allowed("cuda") else "fp32"
    return _auto_inference(policy, device, measure)


def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX, where bf16 matrix products run in hardware.

    ``AIRTOOL_CPU_BF16=0|1`` overrides the detection (torch's probes are private API).
    """
    override = os.environ.get(OVERRIDE)
    if override in ("0", "1"):
        return override == "1"
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def _checked(policy: PrecisionPolicy, device: torch.device, requested: str, workload: Workload, model: str) -> str:
    """``requested`` if the policy validated it on this device (training: fp32 always)."""
    training = workload == "training"
    if requested not in PRECISIONS:
        unknown = f"unknown precision {requested!r}; use auto, fp32, bf16 or fp16"
        raise ConfigError(f"train.precision: {unknown}") if training else DeviceError(unknown)
    if training and requested == "fp16" and device.type != "cuda":
        raise ConfigError(f"train.precision: fp16 needs a CUDA device, not {device.type}; use bf16 or fp32")
    allowed = policy.allowed(device.type)
    if requested in allowed or (training and requested == "fp32"):
        return requested
    refused = f"{requested} is not validated for {model} on {device.type} (allowed: {', '.join(allowed)})"
    raise ConfigError(f"train.precision: {refused}") if training else DeviceError(f"precision {refused}")


def _auto_inference(policy: PrecisionPolicy, device: torch.device, measure: CpuTiming | None) -> str:
    choice = policy.auto(device.type)
    if device.type != "cpu" or choice != "bf16":
        return choice
    if not cpu_has_native_bf16():
        return "fp32"
    if measure is None or os.environ.get(OVERRIDE) == "1":
        return "bf16"
    return _measured(measure)


def _measured(timing: CpuTiming) -> str:
    """bf16 or fp32, whichever the cached (else a new) measurement on this CPU found faster. A
    measurement that other work disturbed decides for this run only: it is not kept, so a quiet
    run measures again."""
    key = timing.key()
    entry = timing_cache.load_entry(key, CACHE_NAME)
    if entry is not None and entry.get("precision") in ("fp32", "bf16"):
        return entry["precision"]
    passes = {p: timing.seconds(p) for p in ("fp32", "bf16")}
    seconds = {p: t.seconds for p, t in passes.items()}
    choice = "bf16" if seconds["bf16"] <= FASTER * seconds["fp32"] else "fp32"
    if not any(t.disturbed for t in passes.values()):
        timing_cache.store_entry(key, {"precision": choice, "seconds": seconds, "side": PROBE_SIDE}, CACHE_NAME)
    return choice
