"""Grow a trained small SymUNet weights file into a paper-size one that computes the same
function (``airtool.models.symunet_growth``), ready for the campaign to continue from.

Usage (repository root):

    airtool train export runs/symunet-s-grow --out candidate/small/symunet-s.safetensors --manifest candidate/small/manifest.json
    python -m tools.grow_symunet candidate/small/symunet-s.safetensors --step 539 --out candidate/grown/symunet-aio3.safetensors
    airtool train campaign --weights candidate/grown/symunet-aio3.safetensors   # after moving runs/symunet-campaign aside

``--step`` places the grown file on the campaign's schedule (the step the campaign had reached:
the schedule is never rewound). Its manifest entry, beside ``--out``, keeps the small file's
lineage and adds the growth, and the file's output is checked against the small one's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def grow_file(small_path: Path, out: Path, step: int, seed: int = 0) -> dict:
    """Write the grown weights and their manifest entry; returns the entry."""
    from airtool.config import to_dict
    from airtool.engine.training.warm_start import lineage_of
    from airtool.models.symunet import SPEC
    from airtool.models.symunet_growth import grow
    from airtool.models.weights import load_model, read_manifest, save_weights, update_manifest

    small, _ = load_model("symunet", small_path)
    small = small.float().eval()
    paper = SPEC.variants["paper"]
    big = grow(small, paper, seed=seed).eval()
    max_dev = _check_same_output(small, big)
    sha = save_weights(big, out, model="symunet", variant="paper", config=to_dict(paper), dtype="fp32",
                       metadata={"airtool_steps": str(step), "airtool_grown_from": small_path.name})
    small_entry = read_manifest(small_path.parent).get("files", {}).get(small_path.name, {})
    growth = {"file": out.name, "sha256": sha, "steps": step, "run_steps": 0, "core_hours": 0.0,
              "command": f"python -m tools.grow_symunet {small_path} --step {step} --out {out}",
              "grown_from": {"file": small_path.name, "sha256": small_entry.get("sha256"),
                             "width": small.cfg.width, "max_abs_dev": max_dev}}
    entry = {"sha256": sha, "model": "symunet", "variant": "paper", "setting": small_entry.get("setting", "aio3"),
             "steps": step, "dtype": "fp32", "data": small_entry.get("data"), "hardware": small_entry.get("hardware"),
             "scores": small_entry.get("scores", {}), "lineage": [*lineage_of(small_entry, small_path.name), growth],
             "notes": f"Net2Net growth of {small_path.name} (width {small.cfg.width}) to the paper size; same output "
                      f"(max deviation {max_dev:.1e} on a random 64x64 input)."}
    update_manifest(out.parent, out.name, entry)
    return entry


def _check_same_output(small: torch.nn.Module, big: torch.nn.Module) -> float:
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        deviation = float((small(x) - big(x)).abs().max())
    if deviation > 1e-4:
        raise SystemExit(f"grow_symunet: the grown network differs from the small one by {deviation:.2e}")
    return deviation


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("small", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--step", type=int, required=True, help="the campaign step the grown file stands at")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    entry = grow_file(args.small, args.out, args.step, args.seed)
    print(json.dumps({"wrote": str(args.out), "sha256": entry["sha256"], "steps": entry["steps"]}))


if __name__ == "__main__":
    main()
