"""Restore and training speed on a quiet machine and beside jobs that keep every core busy,
with torch's OpenMP threads spinning while they wait (libgomp's defaults, what airtool ran with
before) and sleeping (``OMP_WAIT_POLICY=PASSIVE``, what airtool sets now: ``airtool/openmp.py``).

    python -m tools.bench_load                                  # restore and train, 1 run each
    python -m tools.bench_load --pause-pgid "$(cat runs/campaign.pid)" --json bench-load.json

The load is ``--load-procs`` (default: one per core) plain Python busy loops at nice 0. Each
measurement runs airtool in a fresh process, so the wait policy is read when torch loads:
``default`` imports torch before airtool's CLI, which then leaves the environment alone (as
before the change); ``passive`` runs ``python -m airtool``. A quiet measurement starts only once
the CPUs are idle (``--idle``, sampled over a second), so other people's jobs, niced or not, do
not count as quiet; each row records the idle share it started from. ``--pause-pgid``
stops a process group (a background job of yours) during each measurement only and always
resumes it, so no pause lasts longer than one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
# How each policy starts airtool: "default" loads torch first, so airtool cannot set the policy.
POLICIES = {
    "default": ["-c", "import sys, torch; sys.argv[0] = 'airtool'; from airtool.cli import main; main()"],
    "passive": ["-m", "airtool"],
}


@dataclass(frozen=True)
class Measurement:
    workload: str  # "restore" or "train"
    load: str  # "quiet" or "loaded"
    policy: str  # a key of POLICIES
    seconds: float  # restore: the batch's seconds; train: the training loop's seconds
    wall_s: float  # the whole command, start-up included
    idle_before: float  # share of CPU time idle in the second before it started
    command: str


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # resume what was paused
    data = Path(args.data or os.environ.get("AIRTOOL_DATA") or ROOT.parent / "shared" / "data")
    with tempfile.TemporaryDirectory(prefix="airtool-bench-load-") as tmp:
        work = Path(tmp)
        images = make_images(data / "CBSD68", work / "in", args.images, args.size)
        commands = {
            "restore": restore_command(images, work / "out", args.model),
            "train": train_command(args.config, args.steps, data, work / "runs"),
        }
        rows = [row for name in args.workloads for row in measure(name, commands[name], work, args)]
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", choices=("restore", "train"), default=["restore", "train"])
    parser.add_argument("--policies", nargs="+", choices=sorted(POLICIES), default=list(POLICIES))
    parser.add_argument("--images", type=int, default=4, help="Photos to restore (CBSD68, resized).")
    parser.add_argument("--size", type=int, default=500, help="Their side in pixels.")
    parser.add_argument("--model", default="symunet-s")
    parser.add_argument("--config", default="cpu-small", help="Training preset.")
    parser.add_argument("--steps", type=int, default=20, help="Training steps per run.")
    parser.add_argument("--data", help="The shared data folder (default: $AIRTOOL_DATA, else ../shared/data).")
    parser.add_argument("--load-procs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--pause-pgid", type=int, help="Process group to stop during each measurement.")
    parser.add_argument("--idle", type=float, default=0.9, help="Idle share a quiet run waits for (0 = none).")
    parser.add_argument("--wait", type=float, default=600.0, help="Seconds to wait for it before giving up.")
    parser.add_argument("--json", help="Also write the rows to this file.")
    return parser


def make_images(source: Path, folder: Path, count: int, size: int) -> Path:
    """``count`` photos of ``size`` x ``size`` pixels, made from the first CBSD68 images."""
    from PIL import Image

    folder.mkdir(parents=True)
    for i, path in enumerate(sorted(source.glob("*.png"))[:count]):
        Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC).save(folder / f"{i}.png")
    return folder


def restore_command(images: Path, out: Path, model: str) -> list[str]:
    return ["restore", str(images), str(out), "-m", model, "--overwrite", "--json", "--quiet"]


def train_command(config: str, steps: int, data: Path, runs: Path) -> list[str]:
    sets = [f"train.steps={steps}", "val.every=0", f"data.root={data}", f"output_dir={runs}"]
    return ["train", "--config", config, *[a for s in sets for a in ("--set", s)], "--json", "--quiet"]


def measure(workload: str, command: list[str], work: Path, args: argparse.Namespace) -> Iterator[Measurement]:
    """One untimed run (files into the page cache, so the first policy pays no more than the
    others), then every policy quiet, then every policy beside the busy loops."""
    run_airtool(command, POLICIES["passive"], workload)
    for load in ("quiet", "loaded"):
        with busy_loops(args.load_procs if load == "loaded" else 0):
            for policy in args.policies:
                if workload == "train":
                    shutil.rmtree(work / "runs", ignore_errors=True)  # a fresh run each time
                need = args.idle if load == "quiet" else 0.0
                with paused_when_idle(args.pause_pgid, need, args.wait) as idle:
                    seconds, wall = run_airtool(command, POLICIES[policy], workload)
                row = Measurement(workload, load, policy, round(seconds, 2), round(wall, 2), round(idle, 3),
                                  shlex.join(["python", *POLICIES[policy], *command]))
                print(f"{workload:8s} {load:7s} {policy:8s} {row.seconds:8.2f} s (idle before {idle:.0%})",
                      file=sys.stderr, flush=True)
                yield row


def run_airtool(command: list[str], start_args: list[str], workload: str) -> tuple[float, float]:
    """(seconds of the work itself, wall seconds of the command) from its ``--json`` lines."""
    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARIABLES}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *start_args, *command], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench_load: {' '.join(command[:1])} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if workload == "restore":
        return float(next(e["seconds"] for e in events if e.get("summary"))), wall
    return float(next(e["seconds"] for e in events if e.get("event") == "done")), wall


@contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """``count`` processes that keep one core each busy until the block ends."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(1.0 if procs else 0.0)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@contextmanager
def paused_when_idle(pgid: int | None, need: float, wait: float) -> Iterator[float]:
    """Stop the process group ``pgid`` (if any) and wait until the CPUs are at least ``need`` idle;
    the block gets the idle share it starts from. Between tries the group runs again, and it is
    resumed after the block even on Ctrl-C or an error."""
    deadline = time.monotonic() + wait
    while True:
        _signal_group(pgid, signal.SIGSTOP)
        try:
            idle = idle_share()
            if idle >= need or time.monotonic() > deadline:
                if idle < need:
                    print(f"bench_load: CPUs only {idle:.0%} idle; measuring anyway", file=sys.stderr)
                yield idle
                return
        finally:
            _signal_group(pgid, signal.SIGCONT)
        time.sleep(5.0)


def _signal_group(pgid: int | None, signum: int) -> None:
    if pgid is None:
        return
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass  # the job has ended: nothing to pause or resume


def idle_share(seconds: float = 1.0) -> float:
    """The share of all CPUs' time spent idle (or waiting for disks) over ``seconds``
    (``/proc/stat``). Niced jobs count as busy: with the kernel's autogroups, a job started from
    another session competes as an equal, however nice."""

    def times() -> list[int]:
        with open("/proc/stat") as fh:
            return [int(v) for v in fh.readline().split()[1:]]

    before = times()
    time.sleep(seconds)
    delta = [b - a for a, b in zip(before, times(), strict=True)]
    return (delta[3] + delta[4]) / max(1, sum(delta))  # idle + iowait


def print_table(rows: list[Measurement]) -> None:
    """Seconds per run, and loaded / quiet for each workload and policy."""
    quiet = {(r.workload, r.policy): r.seconds for r in rows if r.load == "quiet"}
    print(f"{'workload':8s} {'policy':8s} {'quiet s':>8s} {'loaded s':>9s} {'loaded/quiet':>13s}")
    for r in rows:
        if r.load != "loaded":
            continue
        base = quiet.get((r.workload, r.policy))
        ratio = f"{r.seconds / base:12.2f}x" if base else "?"
        print(f"{r.workload:8s} {r.policy:8s} {base or float('nan'):8.2f} {r.seconds:9.2f} {ratio:>13s}")
    for r in rows:
        print(f"  {r.workload} {r.load} {r.policy}: {r.command}")


if __name__ == "__main__":
    sys.exit(main())
