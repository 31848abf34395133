"""The CPU a figure was measured on: model name, cores, vector extensions, torch's kernels.

Speed on the CPU differs several-fold between machines (AVX2 only, AVX-512, AVX512-BF16, AMX),
so ``airtool bench`` prints this with every result and the auto tile keys its measurements
by it. Read from ``/proc/cpuinfo`` on Linux (``platform`` elsewhere); no torch import unless
``torch_capability`` is called.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

# The extensions that decide how fast convolutions and matrix products run, in rising order.
VECTOR_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
    "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "asimdhp", "sve", "sve2", "bf16", "i8mm",
)


@dataclass(frozen=True)
class CpuInfo:
    model: str
    cores: int  # usable by this process
    vector: tuple[str, ...]  # the VECTOR_FLAGS this CPU has
    family: str = ""  # x86 "family F model M", where /proc/cpuinfo gives them

    def describe(self, capability: str | None = None) -> str:
        """'AMD EPYC (family 25 model 17), 2 cores; avx2, fma, avx512f, ...; torch kernels AVX512'."""
        family = f" ({self.family})" if self.family else ""
        vector = ", ".join(self.vector) or "no vector extensions listed"
        kernels = f"; torch kernels {capability}" if capability else ""
        return f"{self.model}{family}, {self.cores} cores; {vector}{kernels}"


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor's entry of a ``/proc/cpuinfo`` text (x86 or ARM layout)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough: they are alike
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    model = fields.get("model name") or fields.get("hardware") or fields.get("cpu model") or platform.processor()
    family = ""
    if "cpu family" in fields and "model" in fields:
        family = f"family {fields['cpu family']} model {fields['model']}"
    vector = tuple(f for f in VECTOR_FLAGS if f in flags)
    return CpuInfo(model=model or "unknown CPU", cores=usable_cores(), vector=vector, family=family)


def read_cpu() -> CpuInfo:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            return parse_cpuinfo(fh.read())
    except OSError:
        model = platform.processor() or platform.machine() or "unknown CPU"
        return CpuInfo(model=model, cores=usable_cores(), vector=())


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def torch_capability() -> str:
    """The kernel set torch dispatches to on this CPU (e.g. AVX2, AVX512, ZVECTOR, DEFAULT)."""
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"
