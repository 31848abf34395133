"""Held-out validation of weights files: the crops a training preset keeps out of its folders,
scored as its runs validate them (promptir metrics, fp32), for the ship decision of a
campaign, which never looks at the evaluation sets.

Usage (repository root):

    python -m tools.heldout weights/symunet-aio3.safetensors candidate/symunet-aio3.safetensors

Prints one line per file: mean and per-task held-out PSNR; ``--json`` for the numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def heldout_scores(path: Path, preset: str = "symunet-campaign", model: str = "symunet") -> dict[str, float]:
    from airtool.engine.training.config import load_train_config
    from airtool.engine.training.data import build_val_samples
    from airtool.metrics import METRIC_SPECS, score
    from airtool.models.weights import load_model
    from airtool.tasks import TASKS

    cfg = load_train_config(preset)
    net, _ = load_model(model, path)
    net = net.float().eval()
    by_task: dict[str, list[float]] = {}
    with torch.no_grad():
        for degraded, clean, label in build_val_samples(cfg.data, cfg.val, cfg.seed):
            out = net(degraded[None])[0].numpy().transpose(1, 2, 0)
            psnr, _ = score(out, clean.numpy().transpose(1, 2, 0), METRIC_SPECS["promptir"])
            by_task.setdefault(TASKS[int(label)], []).append(min(psnr, 100.0))
    every = [p for values in by_task.values() for p in values]
    return {"val_psnr": float(np.mean(every)), **{f"val_psnr_{t}": float(np.mean(v)) for t, v in by_task.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, nargs="+")
    parser.add_argument("--preset", default="symunet-campaign")
    parser.add_argument("--model", default="symunet")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for path in args.weights:
        scores = heldout_scores(path, args.preset, args.model)
        if args.json:
            print(json.dumps({"file": str(path), **scores}, sort_keys=True))
        else:
            tasks = "  ".join(f"{k[9:]} {v:.2f}" for k, v in scores.items() if k != "val_psnr")
            print(f"{path}: held-out {scores['val_psnr']:.2f} dB  ({tasks})")


if __name__ == "__main__":
    main()
