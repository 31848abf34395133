"""Measure the smallest tile that costs no quality: PSNR with tiles against the whole image.

A tile sees only its own pixels; a degradation spread over the whole picture (haze: the
airlight and transmission are estimated from global statistics) is judged from too little
context, and each tile is restored a little differently (the blotchy patches of small tiles).
This script scores one model on one evaluation set with ``airtool evaluate``'s pairs, protocol
and metrics (``engine.evaluate.evaluate_pairs``), once whole and once per tile size, through the
same tiled path as ``airtool restore`` (``io.tiling.run_tiled``, raised-cosine blend), and prints
the mean PSNR difference per tile. The smallest tile within ``--tolerance`` dB of the whole image,
with every larger one, is what a model's ``ModelSpec.min_tile`` records for that task. Within
means either way: a tile that scores higher on the mean can still lose dB on single images (the
blotches), so a gain counts as a change too; ``worst_db`` shows the largest loss on one image.

Usage (repo root, venv active):

    python -m tools.tile_safety -m symunet-s --data ../shared/data/SOTS_outdoor_mini \\
        --tiles 128,192,256,384,448,512 --stop-early --threads 1

One JSON line per tile (``tile``, ``psnr``, ``delta_db`` against the whole image, ``worst_db``:
the largest loss on one image), then a summary line with ``safe_tile``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


class TiledModel:
    """``engine.evaluate.LoadedModel`` with tiling: the restore path at one tile size (0: whole)."""

    def __init__(self, restorer, name: str, tile: int, overlap: int) -> None:
        self.restorer, self.name, self.tile, self.overlap = restorer, name, tile, overlap

    @property
    def device(self):
        return self.restorer.runtime.device

    def __call__(self, img: np.ndarray) -> tuple[np.ndarray, float]:
        import torch

        from airtool.io.tiling import run_tiled

        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
        start = time.perf_counter()
        with torch.inference_mode():
            y = run_tiled(x, self.restorer.forward_batch, self.tile, self.overlap)
        return y[0].numpy().transpose(1, 2, 0), time.perf_counter() - start


def safe_tile(deltas: dict[int, float], tolerance: float) -> int:
    """The smallest tile whose mean PSNR, and every larger tile's, is within ``tolerance`` dB of
    the whole image's, either way (0: none is)."""
    safe = 0
    for tile in sorted(deltas, reverse=True):
        if abs(deltas[tile]) > tolerance:
            break
        safe = tile
    return safe


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", required=True)
    parser.add_argument("-w", "--weights", default=None)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--task", default=None, help="noise:SIGMA for a folder of clean images")
    parser.add_argument("--tiles", default="128,192,256,384,512")
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--protocol", default="promptir")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--stop-early", action="store_true",
                        help="largest tile first; stop at the first further than --tolerance from the whole image "
                             "(smaller tiles moved further on every set measured)")
    args = parser.parse_args(argv)

    import torch

    from airtool.engine.evaluation.evaluate import PROTOCOLS, evaluate_pairs, find_pairs, parse_task
    from airtool.engine.inference.load import load_restorer

    if args.threads:
        torch.set_num_threads(args.threads)
    restorer = load_restorer(args.model, args.weights, device="cpu", precision="fp32")
    task = parse_task(args.task)
    pairs = find_pairs(args.data, task)[: args.limit]

    def score(tile: int):
        model = TiledModel(restorer, args.model, tile, args.overlap)
        return evaluate_pairs(model, pairs, task=task, protocol=PROTOCOLS[args.protocol], dataset=args.data.name)

    whole = score(0)
    base = {"model": args.model, "dataset": args.data.name, "task": args.task, "count": whole.count,
            "overlap": args.overlap, "whole_psnr": round(whole.psnr, 4)}
    deltas = {}
    for tile in sorted((int(t) for t in args.tiles.split(",")), reverse=args.stop_early):
        report = score(tile)
        diffs = [t.psnr - w.psnr for t, w in zip(report.rows, whole.rows, strict=True)]
        deltas[tile] = report.psnr - whole.psnr
        print(json.dumps({**base, "tile": tile, "psnr": round(report.psnr, 4), "delta_db": round(deltas[tile], 4),
                          "worst_db": round(min(diffs), 4)}), flush=True)
        if args.stop_early and abs(deltas[tile]) > args.tolerance:
            break
    print(json.dumps({**base, "tolerance_db": args.tolerance, "safe_tile": safe_tile(deltas, args.tolerance)}), flush=True)


if __name__ == "__main__":
    main()
