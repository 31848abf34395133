"""SymUNet: airtool's inference path against a straightforward transcription of the paper's blocks.

Usage (repo root, venv active; a quiet machine, since both paths share the cores):

    python -m airtool.devtools.bench_reference --size 256 --threads 2 --repeats 5

The reference is ``devtools.symunet_reference`` (the authors' code: NCHW, hand-written LayerNorm,
F.normalize attention, fp32). airtool's paths are ``Restorer.forward_batch`` in fp32 and in the
CPU's default precision (``--precision auto``), and fp32 with the blocks' row bands switched
off. All share the same random weights (or ``--weights``), and runs are interleaved so that load
on the machine hits them alike. Reports the median ms of each, the speed-ups, and
max |airtool fp32 - reference| over the output.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from airtool.devtools.symunet_reference import ReferenceSymUNet
from airtool.engine.infer import Restorer
from airtool.engine.load import load_restorer
from airtool.models import blocks


def build(weights: str | None) -> tuple[torch.nn.Module, dict[str, Restorer]]:
    """The reference and airtool's fp32 and default-precision paths, all with the same weights."""
    fp32 = load_restorer("symunet", weights, device="cpu", precision="fp32", random_seed=None if weights else 0)
    reference = ReferenceSymUNet().eval()
    reference.load_state_dict(fp32.model.state_dict())
    return reference, {"fp32": fp32, "auto": fp32.with_precision("auto")}


def without_bands(run):
    """``run`` on the blocks' whole-tensor path (row bands off), to measure what the bands give."""

    def unbanded():
        with blocks.whole_tensors():
            return run()

    return unbanded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--weights", help="SymUNet weights (airtool or the authors' .pth); default: random, seed 0")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reference, fast = build(args.weights)
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    runs = {"reference_fp32": lambda: reference(x), "airtool_fp32": lambda: fast["fp32"].forward_batch(x),
            "airtool_default": lambda: fast["auto"].forward_batch(x),
            "airtool_fp32_no_bands": without_bands(lambda: fast["fp32"].forward_batch(x))}
    times: dict[str, list[float]] = {name: [] for name in runs}
    with torch.inference_mode():
        outputs = {name: run() for name, run in runs.items()}  # warm-up
        for _ in range(args.repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - start) * 1000)
    ms = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "size": args.size, "threads": args.threads, "repeats": args.repeats, "torch": torch.__version__,
        "default_cpu_precision": fast["auto"].runtime.precision,
        **{f"ms_{name}": round(value, 1) for name, value in ms.items()},
        "speedup_fp32": round(ms["reference_fp32"] / ms["airtool_fp32"], 2),
        "speedup_default": round(ms["reference_fp32"] / ms["airtool_default"], 2),
        "speedup_fp32_no_bands": round(ms["reference_fp32"] / ms["airtool_fp32_no_bands"], 2),
        "bands_speedup_fp32": round(ms["airtool_fp32_no_bands"] / ms["airtool_fp32"], 2),
        "max_abs_diff_fp32": (outputs["airtool_fp32"] - outputs["reference_fp32"]).abs().max().item(),
        "max_abs_diff_default": (outputs["airtool_default"] - outputs["reference_fp32"]).abs().max().item(),
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
