"""Measure a registered model on CPU: parameters, MACs, ms/image (fp32 and bf16), bf16 deviation.

Usage (from the repo root, venv active):

    python -m tools.measure_model anyir --size 256 --threads 2 --repeats 3
    python -m tools.measure_model ndr-restore --size 256 --threads 2 --repeats 3
    python -m tools.measure_model se-symunet --clip CLIP_FOLDER --size 256 --no-timing

Weights are random (fixed seed) unless ``--weights`` is given. The input is a centre crop of a
real image (default: the first file of ../shared/data/CBSD68 in sorted order). MACs come from
``airtool.engine.inference.bench.count_macs`` (the same count as ``airtool bench``).
The bf16 deviation is max |fp32 - bf16 autocast| over the output, raw and clamped to [0, 1].
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from airtool.engine.inference.bench import count_macs
from airtool.models import get_spec

REPO = Path(__file__).resolve().parents[1]


def load_crop(path: Path | None, size: int) -> torch.Tensor:
    """A (1, 3, size, size) centre crop in [0, 1] of ``path`` (default: first CBSD68 image)."""
    if path is None:
        folder = REPO.parent / "shared" / "data" / "CBSD68"
        path = sorted(folder.glob("*.png"))[0]
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    h, w = img.shape[:2]
    if min(h, w) < size:
        raise SystemExit(f"{path} is {w}x{h}, smaller than --size {size}")
    top, left = (h - size) // 2, (w - size) // 2
    crop = img[top : top + size, left : left + size]
    return torch.from_numpy(crop.copy()).permute(2, 0, 1).unsqueeze(0)


def run(model: torch.nn.Module, x: torch.Tensor, bf16: bool) -> torch.Tensor:
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        return model(x).float()


def time_ms(model: torch.nn.Module, x: torch.Tensor, bf16: bool, repeats: int) -> float:
    run(model, x, bf16)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(model, x, bf16)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--variant", default="paper")
    parser.add_argument("--weights", type=Path, help="safetensors file for inference_modules()")
    parser.add_argument("--image", type=Path)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--clip", type=Path, help="CLIP folder for models that need one (se-symunet)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    spec = get_spec(args.model)
    model = spec.create(args.variant).eval()
    if spec.needs_clip:
        from airtool.models.clip_encoder import load_clip_encoder, resolve_clip_path

        model.attach_clip(load_clip_encoder(resolve_clip_path(args.clip, spec.name)))
    if args.weights:
        from safetensors.torch import load_file

        model.inference_modules().load_state_dict(load_file(str(args.weights)), strict=True)
    x = load_crop(args.image, args.size)
    fp32, bf16 = run(model, x, False), run(model, x, True)
    result = {
        "model": args.model,
        "variant": args.variant,
        "size": args.size,
        "params_inference": sum(p.numel() for p in model.inference_modules().parameters()),
        "params_total": sum(p.numel() for p in model.parameters()),
        "macs": count_macs(model, args.size),
        "bf16_max_abs_dev": (fp32 - bf16).abs().max().item(),
        "bf16_max_abs_dev_clamped": (fp32.clamp(0, 1) - bf16.clamp(0, 1)).abs().max().item(),
        "bf16_mean_abs_dev": (fp32 - bf16).abs().mean().item(),
        "torch": torch.__version__,
        "threads": args.threads,
    }
    if not args.no_timing:
        result["ms_fp32"] = time_ms(model, x, False, args.repeats)
        result["ms_bf16"] = time_ms(model, x, True, args.repeats)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
