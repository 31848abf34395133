"""Faults with real processes and real signals: kill -9 at random moments, Ctrl-C,
two runs at once on one output folder, and a training run killed inside a checkpoint write.

Each restore run is a real OS process running the real entry point (``airtool.cli.main``),
stopped with real signals. To fit 20+ kills in seconds on two cores, a small "zygote" process
imports torch and airtool once and forks one child per run (a fresh interpreter would spend
~1.5 s importing torch before doing anything a kill could interrupt). The runs use the
identity model on small images, so every output can be compared byte for byte with a clean
run's. The moments are drawn from a seeded generator and scaled to the timing of a clean run
measured first, mostly falling while outputs are being written.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from airtool.cli import app
from airtool.io.atomic import TMP_MARK
from airtool.io.provenance import FILE_NAME as PROVENANCE
from airtool.io.provenance import Provenance

ROOT = Path(__file__).resolve().parents[2]  # the repository: child processes import this airtool
runner = CliRunner()
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
N_IMAGES = 16

ZYGOTE = r"""
import json, os, sys, time

import torch  # imported once: each forked run starts with it loaded

torch.set_num_threads(1)
import airtool.api, airtool.engine.inference.batch, airtool.engine.inference.infer, airtool.io.image, airtool.models  # noqa: E401,F401
from airtool.cli import main


def child(argv, out, err):
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
    os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
    sys.argv = ["airtool", *argv]
    main()  # leaves through SystemExit, and the interpreter exits as a real run's does


def serve():
    print("ready", flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        started = {}
        for i, run in enumerate(req["runs"]):
            if i:
                time.sleep(req.get("stagger", 0.0))
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                child(run["argv"], run["out"], run["err"])
            started[pid] = time.monotonic()
            wall = wall if i else time.time()
        t0 = min(started.values())
        if req.get("signal"):
            time.sleep(req["after"])
            for pid in started:
                os.kill(pid, req["signal"])
        deadline, ended = time.monotonic() + 60, {}
        while len(ended) < len(started):
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid:
                ended[pid] = (os.waitstatus_to_exitcode(status), time.monotonic())
            elif time.monotonic() > deadline:  # a hung run: kill it, the test reports it
                for p in set(started) - set(ended):
                    os.kill(p, 9)
                deadline = float("inf")
            else:
                time.sleep(0.002)
        print(json.dumps([{"pid": pid, "rc": ended[pid][0], "start": started[pid] - t0, "end": ended[pid][1] - t0,
                           "wall_start": wall} for pid in started]), flush=True)


serve()
"""


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


class Zygote:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=_env())
        assert self.proc.stdout.readline().strip() == "ready"

    def run(self, *argvs: list[str], logs: Path, sig: int = 0, after: float = 0.0, stagger: float = 0.0) -> list[dict]:
        """Fork one child per argv (``stagger`` seconds apart), send ``sig`` to all ``after``
        seconds from the first fork, and return each child's exit code and times. Each child's
        stdout and stderr are in ``logs/<i>.out`` and ``logs/<i>.err``."""
        logs.mkdir(parents=True, exist_ok=True)
        runs = [{"argv": argv, "out": str(logs / f"{i}.out"), "err": str(logs / f"{i}.err")}
                for i, argv in enumerate(argvs)]
        self.proc.stdin.write(json.dumps({"runs": runs, "signal": sig, "after": after, "stagger": stagger}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def zygote():
    z = Zygote()
    yield z
    z.close()


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """16 images of several kinds in two folders, large enough (noise PNGs of ~100k pixels) that
    writing them takes a few hundred milliseconds, so random kills can land mid-batch."""
    import png

    src = tmp_path_factory.mktemp("faults") / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        folder = src / "sub" if i % 2 else src
        kind = i % 4
        if kind == 0:
            Image.fromarray(rng.integers(0, 256, (320, 384, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
        elif kind == 1:
            Image.fromarray(rng.integers(0, 256, (288, 352), dtype=np.uint8), "L").save(folder / f"{i:02d}.png")
        elif kind == 2:
            Image.fromarray(rng.integers(0, 256, (320, 320, 4), dtype=np.uint8), "RGBA").save(folder / f"{i:02d}.png")
        else:
            with open(folder / f"{i:02d}.png", "wb") as fh:
                png.Writer(240, 160, greyscale=False, bitdepth=16).write(
                    fh, rng.integers(0, 65536, (160, 720), dtype=np.uint16))
    return src


def _restore_args(src: Path, out: Path, *extra: str) -> list[str]:
    return ["restore", str(src), str(out), "-r", "--model", "identity", "--device", "cpu", "--json", *extra]


def _outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and TMP_MARK not in p.name and p.name != PROVENANCE}


def _all_recorded(out: Path, clean: dict[str, bytes]) -> bool:
    """The provenance record names one recipe for every output, as the files are now."""
    made = Provenance(out).made_by([out / rel for rel in clean])
    return len(made) == len(clean) and len({recipe.id for recipe in made.values()}) == 1


def _temps(out: Path) -> list[str]:
    return [p.name for p in out.rglob(f"*{TMP_MARK}*")] if out.exists() else []


@pytest.fixture(scope="module")
def clean(tree, tmp_path_factory) -> dict[str, bytes]:
    """What an uninterrupted run writes (in-process, independent of the forked children)."""
    out = tmp_path_factory.mktemp("clean") / "out"
    result = runner.invoke(app, _restore_args(tree, out))
    assert result.exit_code == 0, result.output
    outputs = _outputs(out)
    assert len(outputs) == N_IMAGES
    return outputs


def _summary(path: Path) -> dict:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    assert lines and lines[-1].get("summary"), path.read_text()
    return lines[-1]


def _resume(tree: Path, out: Path, clean: dict[str, bytes], already: int) -> None:
    """The next run: completes the batch, skips exactly the finished outputs, leaves no temp file."""
    result = runner.invoke(app, _restore_args(tree, out))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.splitlines()[-1])
    assert (summary["skipped"], summary["done"], summary["failed"]) == (already, N_IMAGES - already, 0)
    assert _outputs(out) == clean
    assert _temps(out) == []
    assert _all_recorded(out, clean)  # no kill left an output without its record, or with a wrong one


def _timed_full_run(zygote, tree, tmp_path, clean) -> tuple[float, float, float]:
    """An uninterrupted forked run: (its duration, when its first and its last output appeared)."""
    out = tmp_path / "full"
    [child] = zygote.run(_restore_args(tree, out), logs=tmp_path / "logs-full")
    assert child["rc"] == 0, (tmp_path / "logs-full" / "0.err").read_text()
    assert _outputs(out) == clean  # a forked run writes what an in-process run writes
    written = sorted(p.stat().st_mtime - child["wall_start"] for p in out.rglob("*.png"))
    return child["end"], written[0], written[-1]


def _moment(rnd: random.Random, span: float, first: float, last: float) -> float:
    """A random moment of a run: mostly while outputs are being written, sometimes any time."""
    if rnd.random() < 0.25:
        return rnd.uniform(0.0, span)
    margin = 0.2 * (last - first) + 0.01
    return rnd.uniform(max(0.0, first - margin), last + margin)


@pytest.mark.slow
def test_kill_9_at_random_moments_then_the_next_run_completes(zygote, tree, clean, tmp_path):
    rnd = random.Random(20261123)
    span, first, last = _timed_full_run(zygote, tree, tmp_path, clean)
    kills, mid_batch, left_temps = 0, 0, 0
    for attempt in range(80):
        out = tmp_path / f"out{attempt}"
        moment = _moment(rnd, span, first, last)
        [child] = zygote.run(_restore_args(tree, out), logs=tmp_path / f"logs{attempt}", sig=signal.SIGKILL,
                             after=moment)
        assert child["rc"] in (0, -signal.SIGKILL), child
        present = _outputs(out) if out.exists() else {}
        for rel, data in present.items():  # whatever exists is complete and right
            assert data == clean[rel], (attempt, rel)
        if child["rc"] == -signal.SIGKILL:
            kills += 1
            mid_batch += 0 < len(present) < N_IMAGES
            left_temps += bool(_temps(out))
        # On a loaded machine the writing window drifts from the timed run: follow it.
        if child["rc"] == -signal.SIGKILL and not present:
            first = min(max(first, moment), last)
        elif len(present) == N_IMAGES:
            last = max(min(last, moment), first)
        _resume(tree, out, clean, already=len(present))
        if kills >= 20 and mid_batch >= 5:
            break
    print(f"\n{kills} kills in {attempt + 1} runs ({span:.2f} s, outputs written {first:.2f}-{last:.2f} s): "
          f"{mid_batch} mid-batch, {left_temps} left temporary files")
    assert kills >= 20
    assert mid_batch >= 5, "the kills should land while outputs are being written"


@pytest.mark.slow
def test_ctrl_c_exits_130_keeps_finished_outputs_and_the_next_run_resumes(zygote, tree, clean, tmp_path):
    rnd = random.Random(7)
    span, first, last = _timed_full_run(zygote, tree, tmp_path, clean)
    interrupted = 0
    for attempt in range(6):
        out = tmp_path / f"out{attempt}"
        logs = tmp_path / f"logs{attempt}"
        [child] = zygote.run(_restore_args(tree, out), logs=logs, sig=signal.SIGINT, after=rnd.uniform(first, last))
        # 0: it had finished; -SIGINT: it was already exiting (Python is past its handler; shells show 130 too)
        assert child["rc"] in (0, 130, -signal.SIGINT), (child, (logs / "0.err").read_text())
        present = _outputs(out) if out.exists() else {}
        assert all(data == clean[rel] for rel, data in present.items())
        assert _temps(out) == []  # Ctrl-C lets the write in progress finish; nothing half-written stays
        if child["rc"] == -signal.SIGINT:  # only once the batch was over
            assert _summary(logs / "0.out")["interrupted"] is False and len(present) == N_IMAGES
        if child["rc"] == 130:
            interrupted += 1
            err = (logs / "0.err").read_text()
            assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
            if (logs / "0.out").read_text().strip():
                assert _summary(logs / "0.out")["interrupted"] is True
        _resume(tree, out, clean, already=len(present))
    assert interrupted >= 3


@pytest.mark.slow
def test_two_runs_at_once_on_one_output_folder_lose_nothing(zygote, tree, clean, tmp_path):
    """Design: no lock. Each run writes uniquely named temporary files and renames them, so the
    last rename wins with a complete file, and neither run removes the other's files in flight."""
    _, first, last = _timed_full_run(zygote, tree, tmp_path, clean)
    mid_write = [first + f * (last - first) for f in (0.3, 0.7)]  # the second starts while the first writes
    rounds = [("same moment", 0.0, ()), ("staggered", mid_write[0], ()), ("staggered", mid_write[1], ()),
              ("both --overwrite on a finished folder", 0.0, ("--overwrite",))]
    out = tmp_path / "out"
    for i, (what, stagger, extra) in enumerate(rounds):
        if not extra:
            out = tmp_path / f"out{i}"
        logs = tmp_path / f"logs{i}"
        first, second = zygote.run(_restore_args(tree, out, *extra), _restore_args(tree, out, *extra),
                                   logs=logs, stagger=stagger)
        assert first["rc"] == second["rc"] == 0, (what, (logs / "0.err").read_text(), (logs / "1.err").read_text())
        assert second["start"] < first["end"], f"{what}: the runs did not overlap"
        a, b = _summary(logs / "0.out"), _summary(logs / "1.out")
        for s in (a, b):
            assert s["failed"] == 0 and s["done"] + s["skipped"] == N_IMAGES, (what, s)
        if extra:
            assert a["done"] == b["done"] == N_IMAGES  # both rewrote every file under the other's feet
        assert _outputs(out) == clean, what
        assert _temps(out) == [], what
        assert _all_recorded(out, clean), what


KILLED_IN_CHECKPOINT = r"""
import io, os, signal, sys

import torch

real_save = torch.save


def save_then_die(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and obj.get("step") == 3:  # the third checkpoint: half of it reaches the disk
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        fh = open(f, "wb") if isinstance(f, (str, os.PathLike)) else f
        fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        fh.flush()
        os.fsync(fh.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)


torch.save = save_then_die
torch.set_num_threads(1)
from airtool.cli import main

sys.argv = ["airtool", "train", "--config", sys.argv[1], "--quiet"]
main()
"""


@pytest.mark.slow
def test_training_killed_inside_a_checkpoint_write_resumes_from_the_last_good_one(tmp_path):
    from airtool.engine.training import train as T

    rng = np.random.default_rng(1)
    (tmp_path / "data" / "clean").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(tmp_path / "data" / "clean" / f"{i}.png")
    config = {
        "name": "killed", "output_dir": str(tmp_path / "runs"), "model": {"name": "symunet", "variant": "tiny"},
        "data": {"root": str(tmp_path / "data"), "crop": 32, "batch_size": 1, "workers": 0,
                 "sources": [{"path": "clean", "task": "noise", "sigmas": [25]}]},
        "val": {"every": 0}, "train": {"steps": 4, "ckpt_every": 1, "keep_checkpoints": 2, "device": "cpu"},
    }
    (tmp_path / "killed.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, "-c", KILLED_IN_CHECKPOINT, str(tmp_path / "killed.yaml")],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    ckpts = tmp_path / "runs" / "killed" / "checkpoints"
    names = sorted(p.name for p in ckpts.iterdir())
    assert [n for n in names if TMP_MARK not in n] == ["step-00000001.pt", "step-00000002.pt"]
    assert len([n for n in names if TMP_MARK in n]) == 1  # the half-written third checkpoint

    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "runs" / "killed"), "--json"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    resumed = [e for e in events if e["event"] == "resume"]
    assert len(resumed) == 1 and resumed[0]["step"] == 2 and resumed[0]["path"].endswith("step-00000002.pt")
    assert events[-1]["event"] == "result" and events[-1]["step"] == 4
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-00000003.pt", "step-00000004.pt"]  # temp removed
    assert T.load_checkpoint(ckpts / "step-00000004.pt")["step"] == 4
