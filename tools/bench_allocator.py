"""What the malloc settings of ``engine/hardware/allocator.py`` give: page faults and ms per pass, both ways.

Usage (repo root, venv active; a quiet machine):

    python -m tools.bench_allocator --model symunet --sizes 256,512 --threads 2 --rounds 2

Each measurement is a process of its own, alternating glibc's own settings (``AIRTOOL_MALLOC=default``)
and the tuned ones, ``--rounds`` times: it builds the model with random weights, runs one warm-up
pass, then ``--repeats`` passes of ``Restorer.forward_batch``, and reports the median ms and the
minor page faults per pass (``getrusage``). Prints a table and, with ``--json``, one line per process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from tools import child_env

SETTINGS = {"glibc": {"AIRTOOL_MALLOC": "default"}, "tuned": {}}


def measure(model: str, size: int, threads: int, repeats: int) -> dict:
    """One model and size in this process: median ms and page faults per pass after a warm-up."""
    import resource
    import time

    import torch

    from airtool.engine.hardware.allocator import malloc_state
    from airtool.engine.inference.load import load_restorer

    torch.set_num_threads(threads)
    restorer = load_restorer(model, device="cpu", precision="fp32", random_seed=0)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    times = []
    with torch.inference_mode():
        restorer.forward_batch(x)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(repeats):
            start = time.perf_counter()
            restorer.forward_batch(x)
            times.append((time.perf_counter() - start) * 1000)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {"model": model, "size": size, "threads": threads, "malloc": malloc_state(),
            "ms": round(statistics.median(times), 1), "faults_per_pass": faults // repeats}


def one_process(setting: str, model: str, size: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "tools.bench_allocator", "--one", f"{model},{size}",
               "--threads", str(args.threads), "--repeats", str(args.repeats)]
    env = {k: v for k, v in os.environ.items() if k != "AIRTOOL_MALLOC"} | SETTINGS[setting]
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(env), check=True)
    return {"setting": setting, **json.loads(done.stdout.strip().splitlines()[-1])}


def table(rows: list[dict]) -> str:
    lines = ["| model | size | malloc | ms per pass (each round) | page faults per pass |", "|---|---|---|---|---|"]
    keys = sorted({(r["model"], r["size"], r["setting"]) for r in rows}, key=lambda k: (k[0], k[1], k[2] != "glibc"))
    for model, size, setting in keys:
        mine = [r for r in rows if (r["model"], r["size"], r["setting"]) == (model, size, setting)]
        ms = ", ".join(f"{r['ms']:,.0f}" for r in mine)
        faults = ", ".join(f"{r['faults_per_pass']:,}" for r in mine)
        lines.append(f"| {model} | {size}² | {mine[0]['malloc']} | {ms} | {faults} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="symunet")
    parser.add_argument("--sizes", default="256")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", help="also append every process's result here (JSON lines)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # model,size: one measurement, in this process
    args = parser.parse_args(argv)
    if args.one:
        model, size = args.one.split(",")
        print(json.dumps(measure(model, int(size), args.threads, args.repeats)))
        return
    rows = []
    for _ in range(args.rounds):
        for size in (int(s) for s in args.sizes.split(",")):
            for setting in SETTINGS:
                rows.append(one_process(setting, args.model, size, args))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                if args.json:
                    with open(args.json, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(rows[-1]) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
