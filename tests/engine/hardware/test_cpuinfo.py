"""The CPU line: model name, vector extensions and family from /proc/cpuinfo."""

from __future__ import annotations

from airtool.engine.hardware.cpuinfo import parse_cpuinfo, read_cpu

EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 23
model\t\t: 49
model name\t: AMD EPYC 7R32
flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 fma avx avx2 bmi2 sha_ni

processor\t: 1
model name\t: ignored: the first processor is enough
"""

SAPPHIRE_RAPIDS = """processor : 0
cpu family : 6
model : 143
model name : Intel(R) Xeon(R) Platinum 8488C
flags : sse4_2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
"""

GRAVITON = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp sve bf16 i8mm
CPU implementer\t: 0x41
"""


def test_x86_model_family_and_vector_extensions():
    cpu = parse_cpuinfo(EPYC_AVX2)
    assert cpu.model == "AMD EPYC 7R32" and cpu.family == "family 23 model 49"
    assert cpu.vector == ("sse4_2", "avx", "avx2", "fma")
    assert cpu.describe("AVX2").startswith(f"AMD EPYC 7R32 (family 23 model 49), {cpu.cores} cores; sse4_2, avx, avx2, fma")
    assert cpu.describe("AVX2").endswith("; torch kernels AVX2")
    amx = parse_cpuinfo(SAPPHIRE_RAPIDS)
    assert {"avx512_bf16", "amx_tile", "amx_bf16"} <= set(amx.vector) and amx.model.startswith("Intel(R) Xeon(R)")


def test_arm_features_line():
    cpu = parse_cpuinfo(GRAVITON)
    assert cpu.vector == ("asimd", "asimdhp", "sve", "bf16", "i8mm") and cpu.family == ""


def test_this_machine_reads_its_own_cpu():
    cpu = read_cpu()
    assert cpu.cores >= 1 and cpu.model
