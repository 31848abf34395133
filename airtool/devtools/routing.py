"""Where DaAIR's routers send each image: the share of its routers that pick each task's expert.

Usage (repo root, venv active):

    python -m airtool.devtools.routing --weights weights/daair-aio3.safetensors \
        --data ../shared/data/SOTS_outdoor_mini [--json]

DaAIR has one router per block (models/daair.py, DaLe) and each sends the whole image to one
expert (top-1). An image whose routers mostly pick another task's expert is restored as that
degradation: the first warm-started continuation lost 4.4 dB on SOTS that way (its routers sent
SOTS haze to the rain expert), so a candidate's routing on a set says why its score moved.
Reads ``DATA/input`` (or DATA itself when it has no ``input`` folder); the model runs at fp32.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def route_shares(restorer, image: np.ndarray) -> dict[str, float]:
    """Share of ``restorer``'s routers choosing each task for one HWC float image in [0, 1]."""
    import torch

    from airtool.models.daair import Router

    picks: list[torch.Tensor] = []
    routers = [m for m in restorer.model.modules() if isinstance(m, Router)]
    if not routers:
        raise SystemExit("no DaAIR routers in this model")
    hooks = [m.register_forward_hook(lambda _m, _i, out: picks.append(out.argmax(-1))) for m in routers]
    try:
        x = torch.from_numpy(np.ascontiguousarray(image[..., :3].transpose(2, 0, 1), dtype=np.float32))[None]
        with torch.no_grad():
            restorer.model(x.to(next(restorer.model.parameters()).device).contiguous(memory_format=torch.channels_last))
    finally:
        for hook in hooks:
            hook.remove()
    chosen = torch.cat(picks).cpu()
    names = _task_names(int(restorer.model.cfg.num_tasks))
    return {name: float((chosen == i).float().mean()) for i, name in enumerate(names)}


def _task_names(count: int) -> tuple[str, ...]:
    from airtool.tasks import TASKS

    return TASKS[:count]


def inputs_of(data: Path) -> list[Path]:
    from airtool.io.folders import list_images

    folder = data / "input" if (data / "input").is_dir() else data
    return list_images(folder)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="a daair weights file (default: the shipped one)")
    parser.add_argument("--variant", help="model variant, for weights that do not record it")
    parser.add_argument("--data", type=Path, required=True, help="a set folder (DATA/input) or a folder of images")
    parser.add_argument("--json", action="store_true", help="one JSON line per image, then the mean")
    args = parser.parse_args(argv)

    from airtool.engine.load import load_restorer
    from airtool.io.folders import read_rgb

    restorer = load_restorer("daair", args.weights, variant=args.variant, device="cpu", precision="fp32")
    rows = []
    for path in inputs_of(args.data):
        shares = route_shares(restorer, read_rgb(path))
        rows.append(shares)
        print(json.dumps({"image": path.name, **shares}) if args.json else
              f"{path.name}: " + ", ".join(f"{k} {v:.2f}" for k, v in shares.items()))
    if rows:
        mean = {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in rows[0]}
        print(json.dumps({"image": "mean", **mean}) if args.json else "mean: " + ", ".join(f"{k} {v:.2f}" for k, v in mean.items()))


if __name__ == "__main__":
    main()
