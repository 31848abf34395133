"""How thick is the haze: SOTS's hazy/clear pairs beside ``degrade haze`` at each preset.

Usage (repo root, venv active):

    python -m tools.haze_stats --data-root ../shared/data [--draws 4]

For each SOTS_outdoor_mini pair it fits the atmospheric light A (0.70-1.00: the value for which
t = 1 - (I - J) / (A - J), solved in each colour channel, agrees across channels) and prints the input's PSNR
against its target and the 10th/50th/90th percentiles of t. Then it hazes the held-out photos
of the training folders (the last files of ``train/BSDS500_trainval`` and ``train/clean_color``)
``--draws`` times per preset, with the whole image's depth as training does, and prints the same
figures. Training haze far thicker than the evaluation set's teaches the model to over-correct.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from airtool.metrics import psnr


def fit_transmission(hazy: np.ndarray, clear: np.ndarray) -> tuple[float, np.ndarray]:
    """(A, t per pixel) for one HWC RGB pair: I = J t + A (1 - t) with one t for the three
    channels, so the fitted A is the one whose per-channel solutions of t agree best. Pixels
    where A - J is too small in a channel to solve are left out."""
    best = None
    for a in np.linspace(0.70, 1.00, 31):
        gap = a - clear
        ok = (gap > 0.15).all(axis=2)
        per_channel = 1.0 - (hazy - clear)[ok] / gap[ok]  # (N, 3)
        disagreement = float(per_channel.var(axis=1).mean()) if len(per_channel) else np.inf
        if best is None or disagreement < best[0]:
            best = (disagreement, float(a), per_channel.mean(axis=1))
    assert best is not None
    return best[1], best[2]


def _row(name: str, hazy: np.ndarray, clear: np.ndarray, t: np.ndarray, extra: str = "") -> str:
    p10, p50, p90 = np.percentile(t, [10, 50, 90])
    return f"| {name} | {extra} | {psnr(hazy, clear):.2f} | {p10:.2f} / {p50:.2f} / {p90:.2f} |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--draws", type=int, default=4, help="hazings per held-out photo and preset")
    args = parser.parse_args(argv)

    import torch

    from airtool.degrade import haze
    from airtool.engine.evaluation.pairs import find_pairs
    from airtool.io.folders import list_images, read_rgb

    print("| image | haze | input PSNR dB | transmission p10 / p50 / p90 |\n|---|---|---|---|")
    for pair in find_pairs(args.data_root / "SOTS_outdoor_mini", None):
        hazy_path = pair.input
        assert hazy_path is not None
        hazy, clear = read_rgb(hazy_path), read_rgb(pair.target)
        h, w = min(hazy.shape[0], clear.shape[0]), min(hazy.shape[1], clear.shape[1])
        hazy, clear = hazy[:h, :w], clear[:h, :w]
        a, t = fit_transmission(hazy, clear)
        print(_row(f"SOTS {hazy_path.name}", hazy, clear, t, f"fitted A {a:.2f}"))
    held = [list_images(args.data_root / "train" / name)[-2:] for name in ("BSDS500_trainval", "clean_color")]
    rng = np.random.default_rng(0)
    for preset in (*haze.PRESETS, None):
        for path in (p for group in held for p in group):
            clear = torch.from_numpy(np.ascontiguousarray(read_rgb(path).transpose(2, 0, 1)))
            depth = haze.scene_map(clear)
            for _ in range(args.draws):
                params = haze.sample(rng, preset=preset)
                hazy = haze.apply_scene(clear, params, depth)
                t = haze.transmission_at(params, depth)
                print(_row(f"{path.name}", hazy.numpy(), clear.numpy(), t.numpy(),
                           f"{preset or 'any preset'}, beta {params.beta:.2f}"))


if __name__ == "__main__":
    main()
