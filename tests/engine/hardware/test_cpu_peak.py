"""The CPU peak: per-cycle FLOP from the extensions, physical cores, clock and threads."""

from __future__ import annotations

import pytest

from airtool.engine.hardware.cpu_peak import parse_cpuinfo, peak


def _cpuinfo(vendor: str, family: int, model: int, flags: str, cores: int, threads_per_core: int = 1, mhz: float = 2000.0) -> str:
    blocks = []
    for core in range(cores):
        for _ in range(threads_per_core):
            blocks.append(
                f"processor\t: {len(blocks)}\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\n"
                f"model name\t: test cpu\ncpu MHz\t\t: {mhz}\nphysical id\t: 0\ncore id\t\t: {core}\nflags\t\t: {flags}\n"
            )
    return "\n".join(blocks)


ZEN4 = "fpu sse sse2 avx fma avx2 avx512f avx512bw avx512_bf16"


def test_zen4_like_this_machine():
    cpu = parse_cpuinfo(_cpuinfo("AuthenticAMD", 25, 17, ZEN4, cores=2, mhz=2596.0))
    p = peak(cpu)
    assert cpu.cores == 2 and cpu.mhz == 2596.0 and p.extensions[:2] == ("avx512_bf16", "avx512f")
    assert p.fp32_per_cycle == 32 and p.bf16_per_cycle == 64  # 256-bit pipes, bf16 pairs
    assert p.gflops("fp32", 2) == pytest.approx(32 * 2 * 2.596)
    assert p.gflops("bf16", 1) == pytest.approx(64 * 2.596)


def test_intel_amx_and_plain_avx2():
    spr = peak(parse_cpuinfo(_cpuinfo("GenuineIntel", 6, 143, ZEN4 + " amx_bf16 amx_tile", cores=4)))
    assert spr.fp32_per_cycle == 64 and spr.bf16_per_cycle == 2048 and spr.extensions[0] == "amx_bf16"
    haswell = peak(parse_cpuinfo(_cpuinfo("GenuineIntel", 6, 60, "sse2 avx fma avx2", cores=4)))
    assert haswell.fp32_per_cycle == 32 and haswell.bf16_per_cycle == 32  # no bf16 hardware: fp32 rate
    zen1 = peak(parse_cpuinfo(_cpuinfo("AuthenticAMD", 23, 1, "sse2 avx fma avx2", cores=4)))
    assert zen1.fp32_per_cycle == 16 and "Zen 1" in zen1.basis


def test_hyperthreads_count_once_and_threads_cap_at_cores():
    cpu = parse_cpuinfo(_cpuinfo("GenuineIntel", 6, 60, "sse2 avx fma avx2", cores=4, threads_per_core=2))
    p = peak(cpu)
    assert cpu.cores == 4
    assert p.gflops("fp32", 8) == p.gflops("fp32", 4) == pytest.approx(2 * p.gflops("fp32", 2))


def test_cpufreq_maximum_wins_over_the_current_clock_and_no_clock_means_no_peak():
    text = _cpuinfo("AuthenticAMD", 25, 17, ZEN4, cores=2, mhz=1500.0)
    cpu = parse_cpuinfo(text, max_khz=3_700_000)
    assert cpu.mhz == 3700.0 and cpu.mhz_source == "cpufreq max"
    assert peak(parse_cpuinfo(text.replace("cpu MHz\t\t: 1500.0\n", ""))).gflops() is None
    assert peak(parse_cpuinfo("")).gflops() is None
