"""The CPU's theoretical peak FLOP/s, from its vector extensions, core count and clock.

peak = FLOP per cycle per core x cores used x clock, where FLOP per cycle per core is
(FMA units) x (lanes of the widest vector the units execute) x 2 (a fused multiply-add is two
FLOP). The units and their width are not visible to software, so they come from the CPU family
as the vendors document them; every rule below says which it is, and ``basis`` says which one
was applied. Assumptions: all cores sustain the stated clock at once (turbo is not counted: the
clock is the maximum in /sys cpufreq, else the "cpu MHz" of /proc/cpuinfo, which in a virtual
machine is the host's nominal clock); bf16 counts the instructions that take bf16 natively
(AVX512-BF16 ``vdpbf16ps``: two products per fp32 lane; AMX: 1,024 bf16 FMAs per cycle per
core), otherwise bf16 runs at the fp32 rate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

_MAX_FREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")


@dataclass(frozen=True)
class CpuInfo:
    vendor: str = ""
    family: int = 0
    model: int = 0
    name: str = ""
    flags: frozenset[str] = field(default=frozenset(), repr=False)
    cores: int = 1  # physical cores
    mhz: float = 0.0
    mhz_source: str = ""


@dataclass(frozen=True)
class CpuPeak:
    cpu: CpuInfo
    extensions: tuple[str, ...]  # the vector extensions that set the peak, widest first
    fp32_per_cycle: int  # FLOP per cycle per core
    bf16_per_cycle: int
    basis: str  # which rule gave the per-cycle figures

    def gflops(self, precision: str = "fp32", threads: int | None = None) -> float | None:
        """Peak GFLOP/s for ``threads`` threads (at most one per physical core); None without a clock."""
        per_cycle = self.bf16_per_cycle if precision == "bf16" else self.fp32_per_cycle
        if not self.cpu.mhz or not per_cycle:
            return None
        cores = min(threads or self.cpu.cores, self.cpu.cores)
        return per_cycle * cores * self.cpu.mhz / 1000


def parse_cpuinfo(text: str, max_khz: int | None = None) -> CpuInfo:
    """``/proc/cpuinfo`` (x86 layout) -> CpuInfo; ``max_khz`` from cpufreq, when there is one."""
    blocks = [b for b in text.strip().split("\n\n") if b.strip()]
    fields = [dict(_field(line) for line in b.splitlines() if ":" in line) for b in blocks]
    if not fields:
        return CpuInfo()
    first = fields[0]
    cores = {(f.get("physical id", "0"), f.get("core id", str(i))) for i, f in enumerate(fields)}
    mhz, source = (max_khz / 1000, "cpufreq max") if max_khz else (_float(first.get("cpu MHz")), "/proc/cpuinfo cpu MHz")
    return CpuInfo(
        vendor=first.get("vendor_id", ""), family=int(_float(first.get("cpu family"))), model=int(_float(first.get("model"))),
        name=first.get("model name", ""), flags=frozenset(first.get("flags", "").split()), cores=len(cores),
        mhz=mhz, mhz_source=source if mhz else "",
    )


def _field(line: str) -> tuple[str, str]:
    key, _, value = line.partition(":")
    return key.strip(), value.strip()


def _float(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


def read_cpu() -> CpuInfo:
    """This machine's CpuInfo (empty fields where /proc/cpuinfo does not exist, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return CpuInfo(cores=os.cpu_count() or 1)
    try:
        max_khz = int(_MAX_FREQ.read_text().strip())
    except (OSError, ValueError):
        max_khz = None
    return parse_cpuinfo(text, max_khz)


def peak(cpu: CpuInfo) -> CpuPeak:
    """Per-cycle FLOP of the widest FMA path ``cpu`` has, by the rules in the module docstring."""
    f, amd = cpu.flags, cpu.vendor == "AuthenticAMD"
    exts = tuple(x for x in ("amx_bf16", "avx512_bf16", "avx512f", "avx2", "fma", "avx") if x in f)
    if "avx512f" in f:
        if amd and cpu.family == 25:  # Zen 4: 512-bit ops split over two 256-bit FMA pipes
            fp32, basis = 2 * 8 * 2, "AMD Zen 4: AVX-512 on 2 FMA pipes of 256 bits"
        else:  # Intel Xeon Scalable (Gold/Platinum) and Zen 5: 2 FMA units of 512 bits; some parts have 1
            fp32, basis = 2 * 16 * 2, "AVX-512: 2 FMA units of 512 bits"
    elif "avx2" in f and "fma" in f:
        zen1 = amd and cpu.family == 23 and cpu.model < 0x30  # Zen/Zen+: 256-bit ops on 128-bit pipes
        fp32, basis = (2 * 4 * 2, "AMD Zen 1: 2 FMA pipes of 128 bits") if zen1 else (2 * 8 * 2, "AVX2: 2 FMA units of 256 bits")
    elif "avx" in f:
        fp32, basis = 8 * 2, "AVX without FMA: one 256-bit multiply and one add per cycle"
    elif "sse2" in f:
        fp32, basis = 4 * 2, "SSE2: one 128-bit multiply and one add per cycle"
    else:
        fp32, basis = 0, "unknown vector units (not x86): no peak"
    if "amx_bf16" in f:
        bf16, basis = 1024 * 2, basis + "; AMX: 1,024 bf16 FMAs per cycle"
    elif "avx512_bf16" in f:
        bf16, basis = 2 * fp32, basis + "; AVX512-BF16: 2 bf16 products per fp32 lane"
    else:
        bf16 = fp32
    return CpuPeak(cpu=cpu, extensions=exts, fp32_per_cycle=fp32, bf16_per_cycle=bf16, basis=basis)


def this_cpu() -> CpuPeak:
    return peak(read_cpu())
