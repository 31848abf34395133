"""SymUNet: airtool's inference path against a straightforward transcription of the paper's blocks.

Usage (repo root, venv active; a quiet machine, since both paths share the cores):

    python -m tools.bench_reference --size 256 --threads 2 --repeats 5
    python -m tools.bench_reference --size 256 --threads 2 --repeats 3 --processes 4

The reference is ``tests/reference/symunet_reference.py`` (the authors' code: NCHW, hand-written LayerNorm,
F.normalize attention, fp32). airtool's paths are ``Restorer.forward_batch`` in fp32 and in the
CPU's default precision (``--precision auto``), and fp32 with the blocks' row bands or the fused
GDFN gate switched off. All share the same random weights (or ``--weights``), and runs are interleaved so that load
on the machine hits them alike. Reports the median ms of each, the speed-ups, and
max |airtool fp32 - reference| over the output.

In one process every path shares the process's malloc settings, which airtool tunes
(``engine/hardware/allocator.py``), so that ratio is the code's alone. ``--processes N`` instead runs N
rounds of two processes in turn: the reference alone with glibc's own settings
(``AIRTOOL_MALLOC=default``: the authors' code as a user runs it) and airtool's default path
alone as ``airtool restore`` runs it, each timing ``--repeats`` passes after a warm-up; it
reports each round's ratio and their median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from airtool.engine.inference.infer import Restorer
from airtool.engine.inference.load import load_restorer
from airtool.models import blocks
from tests.reference.symunet_reference import ReferenceSymUNet
from tools import child_env


def build(weights: str | None) -> tuple[torch.nn.Module, dict[str, Restorer]]:
    """The reference and airtool's fp32 and default-precision paths, all with the same weights."""
    fp32 = load_restorer("symunet", weights, device="cpu", precision="fp32", random_seed=None if weights else 0)
    reference = ReferenceSymUNet().eval()
    reference.load_state_dict(fp32.model.state_dict())
    return reference, {"fp32": fp32, "auto": fp32.with_precision("auto")}


def switched_off(switch, run):
    """``run`` inside ``switch`` (``blocks.whole_tensors`` or ``blocks.unfused_gate``), to measure what it gives."""

    def without():
        with switch():
            return run()

    return without


def timed_ms(run, repeats: int) -> list[float]:
    """Milliseconds of ``repeats`` calls of ``run`` after one warm-up call, without autograd."""
    with torch.inference_mode():
        run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1000)
    return times


def worker(path: str, args: argparse.Namespace) -> dict:
    """One path alone in this process: ``reference`` or ``airtool`` (the default path)."""
    from airtool.engine.hardware.allocator import malloc_state

    torch.set_num_threads(args.threads)
    reference, fast = build(args.weights)
    run = reference if path == "reference" else fast["auto"].forward_batch
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    times = timed_ms(lambda: run(x), args.repeats)
    return {"path": path, "ms": statistics.median(times), "malloc": malloc_state()}


def _one_process(path: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "tools.bench_reference", "--worker", path,
               "--size", str(args.size), "--threads", str(args.threads), "--repeats", str(args.repeats)]
    if args.weights:
        command += ["--weights", args.weights]
    # The reference runs as the authors' code would: with glibc's own malloc settings.
    env = {**os.environ, **({"AIRTOOL_MALLOC": "default"} if path == "reference" else {})}
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(env), check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def across_processes(args: argparse.Namespace) -> dict:
    """``args.processes`` rounds of the reference's process then airtool's; each round's ratio."""
    rounds = []
    for _ in range(args.processes):
        reference, airtool = _one_process("reference", args), _one_process("airtool", args)
        rounds.append({"ms_reference": round(reference["ms"], 1), "ms_airtool_default": round(airtool["ms"], 1),
                       "speedup": round(reference["ms"] / airtool["ms"], 2),
                       "malloc": {"reference": reference["malloc"], "airtool": airtool["malloc"]}})
    return {"size": args.size, "threads": args.threads, "repeats": args.repeats, "torch": torch.__version__,
            "rounds": rounds, "speedup_median": statistics.median(r["speedup"] for r in rounds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--weights", help="SymUNet weights (airtool or the authors' .pth); default: random, seed 0")
    parser.add_argument("--processes", type=int, default=0, metavar="N",
                        help="N rounds of the reference and airtool's default path, each in its own process")
    parser.add_argument("--worker", choices=("reference", "airtool"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker or args.processes:
        result = worker(args.worker, args) if args.worker else across_processes(args)
        sys.stdout.write(json.dumps(result, indent=None if args.worker else 2) + "\n")
        return

    from airtool.engine.hardware.allocator import malloc_state

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reference, fast = build(args.weights)
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    runs = {"reference_fp32": lambda: reference(x), "airtool_fp32": lambda: fast["fp32"].forward_batch(x),
            "airtool_default": lambda: fast["auto"].forward_batch(x),
            "airtool_fp32_no_bands": switched_off(blocks.whole_tensors, lambda: fast["fp32"].forward_batch(x)),
            "airtool_fp32_unfused_gate": switched_off(blocks.unfused_gate, lambda: fast["fp32"].forward_batch(x))}
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
        "default_cpu_precision": fast["auto"].runtime.precision, "malloc": malloc_state(),
        **{f"ms_{name}": round(value, 1) for name, value in ms.items()},
        "speedup_fp32": round(ms["reference_fp32"] / ms["airtool_fp32"], 2),
        "speedup_default": round(ms["reference_fp32"] / ms["airtool_default"], 2),
        "speedup_fp32_no_bands": round(ms["reference_fp32"] / ms["airtool_fp32_no_bands"], 2),
        "bands_speedup_fp32": round(ms["airtool_fp32_no_bands"] / ms["airtool_fp32"], 2),
        "fused_gate_speedup_fp32": round(ms["airtool_fp32_unfused_gate"] / ms["airtool_fp32"], 2),
        "max_abs_diff_fp32": (outputs["airtool_fp32"] - outputs["reference_fp32"]).abs().max().item(),
        "max_abs_diff_default": (outputs["airtool_default"] - outputs["reference_fp32"]).abs().max().item(),
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
