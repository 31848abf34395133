"""DDP training under torchrun on the CPU (gloo): the two ranks stay in step, follow rank 0's
time plan and time limit (even when their clocks disagree), leave the loop together, and rank 0
alone writes the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

RANK_SCRIPT = textwrap.dedent('''
    import os
    import sys
    import time
    import types

    import torch
    from airtool.config import from_dict
    from airtool.engine.training import train as T

    torch.set_num_threads(1)
    data, out = sys.argv[1], sys.argv[2]
    fit = T.Trainer.fit

    def fit_and_keep_weights(self):
        result = fit(self)
        torch.save({"step": self.step, "model": self.model.state_dict()}, f"{out}/rank{self.dist.rank}.pt")
        return result

    T.Trainer.fit = fit_and_keep_weights
    if os.environ["RANK"] == "1":  # this rank's clock runs 3x fast: alone, it would plan and stop early
        clock = time.monotonic
        T.time = types.SimpleNamespace(monotonic=lambda: 3 * clock(), perf_counter=time.perf_counter,
                                       process_time=time.process_time, time=time.time)
    cfg = from_dict(T.TrainConfig, {
        "name": "ddp", "seed": 5, "output_dir": out, "model": {"name": "symunet", "variant": "tiny"},
        "data": {"root": data, "crop": 32, "batch_size": 1, "workers": 0,
                 "sources": [{"path": "clean", "task": "noise", "sigmas": [25], "holdout": 1}]},
        "val": {"every": 5, "crop": 32, "limit": 1},
        "train": {"steps": 100000, "log_every": 1, "ckpt_every": 4, "device": "cpu", "time_limit_s": 4,
                  "fit_to_time": True, "optim": {"name": "adamw", "lr": 1e-3}, "schedule": {"warmup_steps": 1}},
    })
    if sys.argv[3:] == ["nan-on-rank-1"] and os.environ["RANK"] == "1":
        total_loss = T.total_loss

        def nan_loss(*args):
            loss, parts = total_loss(*args)
            return loss * float("nan"), parts

        T.total_loss = nan_loss
    T.train(cfg)
''')


def _data(root: Path) -> Path:
    rng = np.random.default_rng(1)
    (root / "clean").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / "clean" / f"{i}.png")
    return root


def _torchrun(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    data, out = _data(tmp_path / "data"), tmp_path / "runs"
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(script), str(data), str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path), out


@pytest.mark.slow
def test_two_ranks_train_the_same_weights_and_end_at_the_same_step(tmp_path: Path):
    done, out = _torchrun(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    rank0, rank1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["step"] == rank1["step"] > 0
    for name, value in rank0["model"].items():  # DDP averaged every step's gradients over both ranks
        assert torch.equal(value, rank1["model"][name]), name

    events = [json.loads(line) for line in (out / "ddp" / "log.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert start["hardware"].startswith("2× ")
    plans = [e for e in events if e["event"] == "plan"]
    assert plans and rank0["step"] < 100000
    assert any(e["event"] in ("time_limit", "done") for e in events)
    assert any(e["event"] == "val" for e in events)
    assert (out / "ddp" / "checkpoints").is_dir()


@pytest.mark.slow
def test_a_nan_on_one_rank_stops_both_ranks_with_the_reason(tmp_path: Path):
    """Rank 1's loss turns NaN; the averaged gradients carry it to rank 0, which stops itself and
    says why (it is not merely terminated by torchrun when rank 1 fails)."""
    done, out = _torchrun(tmp_path, "nan-on-rank-1")
    assert done.returncode != 0
    assert "gradient norm nan" in done.stderr
    assert not (out / "rank0.pt").exists() and not (out / "rank1.pt").exists()
