"""Training throughput: samples/s and peak memory per model, crop size and training mode.

Usage (repo root, venv active; give it a quiet machine, or read only the ratios):

    python -m tools.bench_train --models symunet,daair --sizes 64,128 \
        --modes baseline,default --rounds 2 --json runs/bench-train.json

Each measurement runs in a fresh process (so peak RSS and torch.compile caches are its own),
builds the real ``Trainer`` of ``airtool train`` for the model's CPU preset with the mode's
settings, warms up, then times ``Trainer.train_step`` on fixed random batches (batch 8 by
default). ``--rounds N`` repeats the whole list N times in the order A B C A B C, so that load on
a shared machine hits every mode alike; the table gives the best round and the ratio of each mode
to ``baseline``. The mode ``loader`` times the data loader alone (real files, degradations made
on the fly) for the same crop and batch, from a cold start (its worker decodes every image the
first time it draws it). ``loader-warm`` times it once every training image is decoded and its
whole-image map (haze's depth) made: the state of a run after its first few hundred steps, since
each loader worker keeps both (``data.cache_mb``); it runs in this process (no worker), so it is
the loader's own cost per sample. ``--profile N`` adds, per measurement, the N operators that
took the most time in the timed steps (``torch.profiler``, self CPU time), to see where a step
goes.

``--ranks N`` runs each step measurement as N processes under ``torchrun`` (DDP over gloo on the
CPU), each with ``threads / N`` threads and ``batch / N`` samples, so one optimiser step still
sees ``batch`` samples: the same update as one process, spread over the cores differently. The
rate reported is the whole step's (``batch`` over the slowest rank's seconds per step), and the
peak RSS the sum over the ranks.

Modes (``--set`` keys of ``train``):
  baseline   the loop as it was before the fast path: fp32, NCHW, for-loop AdamW
  fp32-cl    fp32, channels-last activations and weights
  foreach    baseline with the multi-tensor AdamW;   fused: with the one-kernel AdamW
  bf16       bf16 autocast, NCHW;                    bf16-cl: bf16 autocast, channels-last
  compile    channels-last fp32 with torch.compile of the training forward
  default    what ``airtool train`` does on this machine now (precision/layout/optimiser auto)
  glibc-malloc  default, but with glibc's own malloc settings (``AIRTOOL_MALLOC=default``), as
             every mode ran before ``engine/hardware/allocator.py``; baseline runs so too
  ddp        default, spread over one DDP rank per thread (``--threads`` ranks of 1 thread, each
             ``batch / threads`` samples), whatever ``--ranks`` says: the other modes' single
             process against the same cores as ranks, in one run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools import child_env

MODES: dict[str, list[str]] = {
    "baseline": ["train.precision=fp32", "train.channels_last=false", "train.optim.impl=for-loop"],
    "fp32-cl": ["train.precision=fp32", "train.channels_last=true", "train.optim.impl=for-loop"],
    "foreach": ["train.precision=fp32", "train.channels_last=false", "train.optim.impl=foreach"],
    "fused": ["train.precision=fp32", "train.channels_last=false", "train.optim.impl=fused"],
    "bf16": ["train.precision=bf16", "train.channels_last=false", "train.optim.impl=for-loop"],
    "bf16-cl": ["train.precision=bf16", "train.channels_last=true", "train.optim.impl=for-loop"],
    "compile": ["train.precision=fp32", "train.channels_last=true", "train.compile=true"],
    "default": [],
    "glibc-malloc": [],
    "ddp": [],
    "loader": [],
    "loader-warm": [],
}
# Environment of a mode's process: the baseline (and glibc-malloc) leave malloc as glibc sets it.
MODE_ENV: dict[str, dict[str, str]] = {"baseline": {"AIRTOOL_MALLOC": "default"},
                                       "glibc-malloc": {"AIRTOOL_MALLOC": "default"}}
PRESETS = {"symunet": "symunet-cpu-aio3", "symunet-s": "symunet-s-aio3", "daair": "daair-cpu-aio3",
           "anyir": "anyir-cpu-aio3", "ndr-restore": "ndr-restore-aio3"}


def config_for(model: str, size: int, batch: int, mode: str, data_root: str):
    from airtool.engine.training.train import load_train_config

    sets = [f"data.crop={size}", f"data.batch_size={batch}", f"data.root={data_root}", *MODES[mode]]
    if PRESETS[model] == "ndr-restore-aio3":  # a GPU preset: take the CPU presets' data
        cfg = load_train_config("symunet-s-aio3", [f"model.name={model}", "model.variant=paper", *sets])
    else:
        cfg = load_train_config(PRESETS[model], sets)
    return cfg


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure_step(
    model: str, size: int, batch: int, mode: str, warmup: int, steps: int, data_root: str, profile: int = 0
) -> dict:
    """Seconds per ``train_step`` (best of ``steps`` after ``warmup``) of the real Trainer.

    With ``profile`` > 0 the timed steps run under ``torch.profiler`` and the ``profile`` operators
    with the most self CPU time are printed (the profiler's overhead is in those steps' times).
    """
    import contextlib

    import torch

    from airtool.engine.training.distributed import end_distributed, init_distributed
    from airtool.engine.training.train import Dist, Trainer
    from airtool.tasks import SETTINGS

    cfg = config_for(model, size, batch, mode, data_root)
    dist = init_distributed() if int(os.environ.get("WORLD_SIZE", "1")) > 1 else Dist()
    with tempfile.TemporaryDirectory() as run:
        trainer = Trainer(cfg, Path(run), dist, None)
        gen = torch.Generator().manual_seed(dist.rank)
        clean = torch.rand(batch, 3, size, size, generator=gen)
        degraded = (clean + 0.1 * torch.randn(batch, 3, size, size, generator=gen)).clamp(0, 1)
        task = torch.randint(0, len(SETTINGS[cfg.setting]), (batch,), generator=gen)
        start = time.perf_counter()
        for _ in range(warmup):
            trainer.train_step((degraded, clean, task))
        warm = time.perf_counter() - start
        times = []
        profiler = torch.profiler.profile() if profile else contextlib.nullcontext()
        with profiler:
            for _ in range(steps):
                t0 = time.perf_counter()
                trainer.train_step((degraded, clean, task))
                times.append(time.perf_counter() - t0)
    if profile:
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=profile))
    best = min(times)
    result = {"seconds_per_step": best, "samples_per_s": batch / best, "warmup_s": warm,
              "precision": trainer.precision, "channels_last": trainer.channels_last, "malloc": trainer.malloc}
    if dist.world <= 1:
        return result
    result = _over_ranks(result, dist, batch)
    end_distributed(dist)
    return result


def _over_ranks(result: dict, dist, batch: int) -> dict:
    """One DDP measurement: the slowest rank's step, the whole step's batch, the ranks' summed RSS."""
    import torch
    import torch.distributed as td

    slowest = torch.tensor([result["seconds_per_step"], result["warmup_s"]], dtype=torch.float64)
    td.all_reduce(slowest, op=td.ReduceOp.MAX)
    rss = torch.tensor([peak_rss_mb()], dtype=torch.float64)
    td.all_reduce(rss, op=td.ReduceOp.SUM)
    seconds = float(slowest[0])
    return {**result, "seconds_per_step": seconds, "samples_per_s": batch * dist.world / seconds, "warmup_s": float(slowest[1]),
            "ranks": dist.world, "rank": dist.rank, "peak_rss_mb": float(rss[0])}


def measure_warm_loader(model: str, size: int, batch: int, steps: int, data_root: str) -> dict:
    """Seconds per batch of the training samples once every image and whole-image map is cached,
    made in this process: the loader's steady cost, without the first pass's decoding."""
    from torch.utils.data import DataLoader

    from airtool.engine.training.data import MixtureDataset, build_sources

    cfg = config_for(model, size, batch, "default", data_root)
    sources, _ = build_sources(cfg.data)
    dataset = MixtureDataset(sources, cfg.data, cfg.seed, 0, (steps + 1) * batch)
    start = time.perf_counter()
    for source in sources:
        for index in range(len(source.files)):
            first, second = source.load(index, dataset.cache)
            source.with_scene(index, [first] if second is None else [first, second], dataset.cache)
    filled = time.perf_counter() - start
    loader = iter(DataLoader(dataset, batch_size=batch, num_workers=0, drop_last=True))
    next(loader)
    start = time.perf_counter()
    for _ in range(steps):
        next(loader)
    per_batch = (time.perf_counter() - start) / steps
    return {"seconds_per_step": per_batch, "samples_per_s": batch / per_batch, "workers": 0,
            "cache_fill_s": filled, "cache_mb": dataset.cache.used / 2**20}


def measure_loader(model: str, size: int, batch: int, steps: int, data_root: str) -> dict:
    """Seconds per batch of the real training loader (its configured workers), after the first."""
    from airtool.engine.training.data import build_train_loader

    cfg = config_for(model, size, batch, "default", data_root)
    loader = iter(build_train_loader(cfg.data, cfg.seed, start_step=0, steps=steps + 1))
    next(loader)  # worker start-up
    start = time.perf_counter()
    for _ in range(steps):
        next(loader)
    per_batch = (time.perf_counter() - start) / steps
    return {"seconds_per_step": per_batch, "samples_per_s": batch / per_batch, "workers": cfg.data.workers}


def run_one(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    model, size, mode = args.one.split(",")
    if mode == "loader":
        result = measure_loader(model, int(size), args.batch, args.steps * 4, args.data_root)
    elif mode == "loader-warm":
        result = measure_warm_loader(model, int(size), args.batch, args.steps * 8, args.data_root)
    else:
        result = measure_step(model, int(size), args.batch, mode, args.warmup, args.steps, args.data_root,
                              args.profile)
    ranks = result.pop("ranks", 1)
    if result.pop("rank", 0) != 0:
        return  # rank 0 reports the measurement of all ranks
    result.setdefault("peak_rss_mb", peak_rss_mb())
    result.update(model=model, size=int(size), mode=mode, batch=args.batch * ranks, threads=args.threads * ranks,
                  ranks=ranks)
    print(json.dumps(result))


def cpu_line() -> str:
    from airtool.engine.hardware.cpuinfo import read_cpu, torch_capability

    return read_cpu().describe(torch_capability())


def table(rows: list[dict]) -> str:
    best: dict[tuple, dict] = {}
    for row in rows:
        key = (row["model"], row["size"], row["mode"])
        if key not in best or row["samples_per_s"] > best[key]["samples_per_s"]:
            best[key] = row
    lines = ["| model | crop | mode | samples/s | s/step | × baseline | peak RSS MB |", "|---|---|---|---|---|---|---|"]
    for (model, size, mode), row in best.items():
        base = best.get((model, size, "baseline"))
        ratio = f"{row['samples_per_s'] / base['samples_per_s']:.2f}" if base and not mode.startswith("loader") else ""
        extra = f" ({row['precision']}{', cl' if row.get('channels_last') else ''})" if mode == "default" else ""
        if row.get("ranks", 1) > 1:
            extra += f" ({row['ranks']} ranks × {row['threads'] // row['ranks']} thread)"
        lines.append(f"| {model} | {size} | {mode}{extra} | {row['samples_per_s']:.2f} | "
                     f"{row['seconds_per_step']:.3f} | {ratio} | {row['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def _last_words(stderr: str) -> str:
    """The last line of a failed measurement that says something (torchrun ends on rules of '=')."""
    said = [line.strip() for line in stderr.splitlines() if any(ch.isalnum() for ch in line)]
    return said[-1] if said else "failed"


def mode_ranks(args: argparse.Namespace, mode: str) -> int:
    """Processes of one measurement: 1 for the loaders, one per thread for ``ddp``, else ``--ranks``."""
    return {"loader": 1, "loader-warm": 1, "ddp": args.threads}.get(mode, args.ranks)


def _one_command(args: argparse.Namespace, model: str, size: str, mode: str) -> list[str]:
    """The process (or, with ``--ranks`` > 1 for a step, the torchrun) of one measurement."""
    ranks = mode_ranks(args, mode)
    one = ["-m", "tools.bench_train", "--one", f"{model},{size},{mode}",
           "--batch", str(args.batch // ranks), "--warmup", str(args.warmup), "--steps", str(args.steps),
           "--threads", str(args.threads // ranks), "--data-root", args.data_root, "--profile", str(args.profile)]
    if ranks == 1:
        return [sys.executable, *one]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", *one]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="symunet,daair")
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--modes", default="baseline,default,loader")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ranks", type=int, default=1,
                        help="DDP processes per step measurement (torchrun, gloo), sharing --threads and --batch")
    parser.add_argument("--data-root", default=os.environ.get("AIRTOOL_DATA", "../shared/data"))
    parser.add_argument("--json", type=Path, help="also write every measurement here (JSON lines)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N operators with the most self CPU time in each measurement's timed steps")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # model,size,mode: one measurement, in this process
    args = parser.parse_args(argv)
    if args.one:
        run_one(args)
        return
    unknown = [m for m in args.modes.split(",") if m not in MODES]
    if unknown:
        raise SystemExit(f"bench_train: unknown mode {unknown[0]!r}; choose from {', '.join(MODES)}")
    jobs = [(m, s, mode) for _ in range(args.rounds) for m in args.models.split(",")
            for s in args.sizes.split(",") for mode in args.modes.split(",")]
    for ranks in {mode_ranks(args, mode) for mode in args.modes.split(",")}:
        if ranks < 1 or args.threads % ranks or args.batch % ranks:
            raise SystemExit(f"bench_train: {ranks} ranks must divide --threads {args.threads} and --batch {args.batch}")
    rows, failed = [], []
    for i, (model, size, mode) in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {model} {size}² {mode}", file=sys.stderr, flush=True)
        env = {**os.environ, **MODE_ENV.get(mode, {})}
        done = subprocess.run(_one_command(args, model, size, mode), capture_output=True, text=True,
                              env=child_env(env))
        if done.returncode != 0:
            reason = _last_words(done.stderr)
            print(f"  {model} {size} {mode}: {reason}", file=sys.stderr)
            failed.append(f"{model} {size} {mode}")
            continue
        *printed, last = done.stdout.strip().splitlines()
        row = json.loads(last)
        rows.append(row)
        if args.profile:
            print("\n".join(line for line in printed if not line.startswith("USDT:")), file=sys.stderr)
        print(f"  {row['samples_per_s']:.2f} samples/s", file=sys.stderr, flush=True)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
    import torch

    print(table(rows))
    ranks = f" as {args.ranks} DDP ranks" if args.ranks > 1 else ""
    print(f"({cpu_line()}; {args.threads} threads, batch {args.batch}{ranks}, torch {torch.__version__})")
    if failed:
        raise SystemExit(f"bench_train: {len(failed)} of {len(jobs)} measurements failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
