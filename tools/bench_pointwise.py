"""1x1 convolutions: oneDNN's convolution against a plain GEMM (``F.linear``) on the channels-last view.

Usage (repo root, venv active, a quiet machine):

    python -m tools.bench_pointwise --threads 2

In channels-last memory a 1x1 convolution is a (pixels x C_in) @ (C_in x C_out) product, so
``F.linear(x.permute(0, 2, 3, 1), w)`` computes it with torch's GEMM and no layout change. The
shapes are those of paper-size SymUNet at 256² on the CPU (width 48, 2.66 GDFN expansion): level
1 in its row bands (``models/blocks.band_rows``), levels 2-4 whole. Prints best-of-5 ms of each
path and their ratio per shape, and the ratio over all shapes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

# (C_in, C_out, rows, columns): qkv, GDFN in, GDFN out, per level
SHAPES = [(48, 144, 28, 256), (48, 254, 16, 256), (127, 48, 16, 256),
          (96, 288, 128, 128), (96, 508, 64, 128), (254, 96, 64, 128),
          (192, 576, 64, 64), (192, 1020, 64, 64), (510, 192, 64, 64),
          (384, 1152, 32, 32), (384, 2042, 32, 32), (1021, 384, 32, 32)]


def best_ms(fn: Callable[[], torch.Tensor], calls: int = 20, rounds: int = 5) -> float:
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    total_conv = total_gemm = 0.0
    print("| C_in → C_out | rows × cols | conv ms | GEMM ms | conv/GEMM |\n|---|---|---|---|---|")
    for c_in, c_out, h, w in SHAPES:
        x = torch.randn(1, c_in, h, w).contiguous(memory_format=torch.channels_last)
        weight = torch.randn(c_out, c_in, 1, 1)
        conv = best_ms(lambda x=x, weight=weight: F.conv2d(x, weight))
        matrix = weight.view(c_out, c_in)
        gemm = best_ms(lambda x=x, matrix=matrix: F.linear(x.permute(0, 2, 3, 1), matrix))
        total_conv, total_gemm = total_conv + conv, total_gemm + gemm
        print(f"| {c_in} → {c_out} | {h} × {w} | {conv:.3f} | {gemm:.3f} | {conv / gemm:.2f} |")
    print(f"all shapes: conv {total_conv:.1f} ms, GEMM {total_gemm:.1f} ms, conv/GEMM {total_conv / total_gemm:.2f}")


if __name__ == "__main__":
    main()
