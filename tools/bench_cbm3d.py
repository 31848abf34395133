"""Colour denoising side by side: classical CBM3D against airtool's models on the same noisy images.

Usage (repo root, venv active; ``bm3d`` is not a dependency of airtool, install it beside it):

    pip install bm3d
    python -m tools.bench_cbm3d --data ../shared/data/CBSD68 --sigma 25 \
        --models symunet,daair --json runs/cbm3d-cbsd68-s25.json

The noisy inputs are exactly ``airtool evaluate``'s (promptir protocol: images centre-cropped to
a multiple of 16, one ``RandomState(0)`` stream through σ = 15, 25, 50, uint8 clip + truncation),
and every method is scored with the same promptir metrics (RGB PSNR, uniform SSIM). CBM3D is
``bm3d.bm3d_rgb`` (Dabov et al. 2007, the authors' reference library) with its default profile and
the true σ given to it (the usual oracle setting of the literature, 30.71 dB on CBSD68 σ25).
The airtool models run fp32, untiled, batch 1, as ``evaluate`` does. Per method it prints the mean
PSNR/SSIM and seconds per image; ``--every K`` scores every K-th image only, for a quick look.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Denoiser = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MethodScore:
    method: str
    psnr: float
    ssim: float
    seconds_per_image: float
    count: int


def cbm3d(sigma: float) -> Denoiser:
    """``bm3d.bm3d_rgb`` with the true σ (0-255 scale), or SystemExit with one line if missing."""
    try:
        import bm3d
    except ImportError:
        raise SystemExit("bench_cbm3d: the bm3d package is not installed; run: pip install bm3d") from None

    def run(noisy: np.ndarray) -> np.ndarray:
        return np.asarray(bm3d.bm3d_rgb(noisy, sigma / 255.0), dtype=np.float32)

    return run


def airtool_model(name: str, weights: str | None = None) -> Denoiser:
    """A registered model through ``evaluate``'s inference path (fp32, untiled, batch 1)."""
    from airtool.engine.evaluation.evaluate import load_for_eval

    model = load_for_eval(name, weights, None, "cpu", "fp32")
    return lambda noisy: model(noisy)[0]


def noisy_pairs(folder: Path, sigma: float, every: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, noisy, clean) as ``airtool evaluate --task noise:σ`` makes them, every ``every``-th."""
    from airtool.engine.evaluation.evaluate import PROTOCOLS, Task, find_pairs, iter_inputs

    task = Task("noise", sigma)
    pairs = find_pairs(folder, task)
    inputs = iter_inputs(pairs, task, PROTOCOLS["promptir"])  # the stream must run over every file
    return [(p.name, noisy, clean) for i, (p, noisy, clean) in enumerate(inputs) if i % every == 0]


def score_method(name: str, denoise: Denoiser, pairs: list[tuple[str, np.ndarray, np.ndarray]],
                 log: Callable[[str], None]) -> MethodScore:
    from airtool.metrics import METRIC_SPECS, score

    psnrs, ssims, seconds = [], [], []
    for i, (image, noisy, clean) in enumerate(pairs, 1):
        start = time.perf_counter()
        restored = denoise(noisy)
        seconds.append(time.perf_counter() - start)
        value_psnr, value_ssim = score(restored, clean, METRIC_SPECS["promptir"])
        psnrs.append(value_psnr)
        ssims.append(value_ssim)
        log(f"{name} {i}/{len(pairs)} {image}: {value_psnr:.2f} dB in {seconds[-1]:.1f} s")
    return MethodScore(name, float(np.mean(psnrs)), float(np.mean(ssims)), float(np.mean(seconds)), len(pairs))


def cpu_name() -> str:
    from airtool.engine.hardware.cpuinfo import read_cpu

    return read_cpu().describe()


def markdown(rows: list[MethodScore], sigma: float, dataset: str) -> str:
    head = f"| method | {dataset} σ{sigma:g} PSNR / SSIM | s per image |\n|---|---|---|"
    body = [f"| {r.method} | {r.psnr:.2f} / {r.ssim:.3f} | {r.seconds_per_image:.2f} |" for r in rows]
    return "\n".join([head, *body])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("AIRTOOL_DATA", "../shared/data")) / "CBSD68")
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--models", default="symunet", help="comma-separated airtool models ('' for none)")
    parser.add_argument("--no-cbm3d", action="store_true", help="score only the airtool models")
    parser.add_argument("--every", type=int, default=1, help="score every K-th image (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    methods: list[tuple[str, Denoiser]] = [] if args.no_cbm3d else [("CBM3D", cbm3d(args.sigma))]
    methods += [(name, airtool_model(name)) for name in filter(None, args.models.split(","))]
    pairs = noisy_pairs(args.data, args.sigma, max(1, args.every))
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    rows = [score_method(name, denoise, pairs, log) for name, denoise in methods]
    print(markdown(rows, args.sigma, args.data.name))
    print(f"({len(pairs)} images, {cpu_name()}, {args.threads} threads, torch {torch.__version__})")
    if args.json:
        record = {"dataset": args.data.name, "sigma": args.sigma, "every": args.every, "cpu": cpu_name(),
                  "threads": args.threads, "rows": [r.__dict__ for r in rows]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
