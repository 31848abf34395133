"""engine.cpu_ranks: how many one-thread ranks a CPU run starts, the batch they share, and a whole
``airtool train`` launched as two ranks computing the same weights as one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from airtool.api.train import cpu_ranks
from airtool.config import from_dict
from airtool.engine.training.cpu_ranks import launch_command, per_rank_config, planned_cpu_ranks, shares_batch
from airtool.engine.training.train import TrainConfig, load_checkpoint
from airtool.errors import ConfigError


@pytest.mark.parametrize(("setting", "batch", "threads", "ranks"), [
    ("auto", 8, 2, 2), ("auto", 8, 1, 1), ("auto", 6, 4, 3), ("auto", 1, 2, 1), ("auto", 8, 16, 8), (1, 8, 2, 1),
    (4, 8, 1, 4),
])
def test_auto_takes_the_most_ranks_up_to_the_threads_that_divide_the_batch(setting, batch, threads, ranks):
    assert planned_cpu_ranks(setting, batch, threads) == ranks


@pytest.mark.parametrize("setting", [3, 0])
def test_a_count_that_does_not_divide_the_batch_is_refused(setting):
    with pytest.raises(ConfigError, match=f"train.cpu_ranks={setting}"):
        planned_cpu_ranks(setting, 8, 2)


def _config(tmp_path: Path, **train) -> dict:
    return {
        "name": "ranks", "seed": 3, "output_dir": str(tmp_path / "runs"), "model": {"name": "symunet", "variant": "tiny"},
        "data": {"root": str(tmp_path / "data"), "crop": 32, "batch_size": 2, "workers": 0,
                 "sources": [{"path": "clean", "task": "noise", "sigmas": [25]}]},
        "val": {"every": 0},
        "train": {"steps": 2, "ckpt_every": 1, "device": "cpu", "optim": {"name": "adamw", "lr": 1e-3}, **train},
    }


def test_only_ranks_launched_for_the_cpu_share_the_batch(tmp_path):
    launched = from_dict(TrainConfig, _config(tmp_path, cpu_ranks=2))
    by_hand = from_dict(TrainConfig, _config(tmp_path, cpu_ranks="auto"))  # torchrun started by the user
    assert shares_batch(launched, 2, "cpu") and per_rank_config(launched, 2, "cpu").data.batch_size == 1
    assert not shares_batch(by_hand, 2, "cpu") and per_rank_config(by_hand, 2, "cpu") is by_hand
    assert not shares_batch(launched, 2, "cuda") and not shares_batch(launched, 1, "cpu")


def test_api_starts_ranks_only_for_a_cpu_run_outside_torchrun(tmp_path, monkeypatch):
    cfg = from_dict(TrainConfig, _config(tmp_path, cpu_ranks="auto"))
    assert cpu_ranks(cfg, threads=2) == 2
    assert cpu_ranks(cfg, threads=1) == 1
    assert cpu_ranks(from_dict(TrainConfig, _config(tmp_path, cpu_ranks=2)), threads=1) == 2
    default = from_dict(TrainConfig, _config(tmp_path))
    assert default.train.cpu_ranks == 1 and cpu_ranks(default, threads=2) == 1  # one process unless asked
    import torch

    import airtool.engine.hardware.device as device

    with monkeypatch.context() as patched:
        patched.setattr(device, "resolve_device", lambda name: torch.device("cuda", 0))
        assert cpu_ranks(cfg, threads=2) == 1  # GPUs: torchrun by hand, one process per GPU
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cpu_ranks(cfg, threads=2) == 1


def test_the_ranks_run_the_same_command_and_record_their_count():
    argv = ["train", "--config", "c.yaml", "--set", "seed=1"]
    cmd = launch_command(argv, 2)
    assert cmd[:4] == ["--standalone", "--nproc-per-node=2", "--module", "airtool"]
    assert cmd[4:] == [*argv, "--set", "train.cpu_ranks=2"]


def _train(tmp_path: Path, name: str, *sets: str) -> tuple[subprocess.CompletedProcess, Path]:
    cmd = [sys.executable, "-m", "airtool", "train", "--config", str(tmp_path / "ranks.yaml"), "--quiet",
           "--set", f"name={name}", *(arg for s in sets for arg in ("--set", s))]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300), tmp_path / "runs" / name


@pytest.mark.slow
def test_train_on_two_threads_runs_two_ranks_that_compute_one_process_weights(tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "data" / "clean").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "data" / "clean" / f"{i}.png")
    (tmp_path / "ranks.yaml").write_text(yaml.safe_dump(_config(tmp_path)))

    ranked, ranked_run = _train(tmp_path, "two", "train.cpu_ranks=auto")
    single, single_run = _train(tmp_path, "one")
    assert ranked.returncode == 0 and single.returncode == 0, ranked.stderr + single.stderr
    assert "to step 2" in ranked.stderr and ranked.stderr.count("trained ") == 1  # rank 0 alone reports
    saved = yaml.safe_load((ranked_run / "config.yaml").read_text())
    assert saved["train"]["cpu_ranks"] == 2 and saved["data"]["batch_size"] == 2  # the step's batch, as given
    assert '"hardware": "2\\u00d7' in (ranked_run / "log.jsonl").read_text()
    assert '"hardware": "1\\u00d7' in (single_run / "log.jsonl").read_text()
    two = load_checkpoint(ranked_run / "checkpoints" / "step-00000002.pt")["model"]
    one = load_checkpoint(single_run / "checkpoints" / "step-00000002.pt")["model"]
    assert two.keys() == one.keys()
    before = load_checkpoint(single_run / "checkpoints" / "step-00000001.pt")["model"]
    assert max((one[k].float() - before[k].float()).abs().max().item() for k in one) > 1e-4  # the step moved them
    worst = max((two[k].float() - one[k].float()).abs().max().item() for k in one)
    assert worst < 1e-5, worst


@pytest.mark.slow
def test_a_failing_rank_gives_its_exit_status(tmp_path):
    (tmp_path / "ranks.yaml").write_text(yaml.safe_dump(_config(tmp_path)))  # no data folder
    done, _ = _train(tmp_path, "bad", "train.cpu_ranks=2")
    assert done.returncode == 2
    assert "data folder not found" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("data folder not found") == 1, done.stderr  # both ranks failed alike: one line


def test_error_lines_of_ranks_are_kept_once_each_in_rank_order(tmp_path, monkeypatch):
    from airtool.engine.training.cpu_ranks import distinct_error_lines
    from airtool.report import RANK_ERRORS_ENV, print_error

    monkeypatch.setenv(RANK_ERRORS_ENV, str(tmp_path))
    for rank, line in [("1", "airtool: error: same"), ("0", "airtool: error: same"), ("1", "airtool: error: NaN on rank 1")]:
        monkeypatch.setenv("RANK", rank)
        print_error(line)
    assert distinct_error_lines(str(tmp_path)) == ["airtool: error: same", "airtool: error: NaN on rank 1"]


def test_outside_launched_ranks_errors_go_to_stderr(tmp_path, monkeypatch, capsys):
    from airtool.report import RANK_ERRORS_ENV, print_error

    monkeypatch.delenv(RANK_ERRORS_ENV, raising=False)
    print_error("airtool: error: plain")
    assert capsys.readouterr().err == "airtool: error: plain\n"


@pytest.mark.slow
def test_ctrl_c_stops_every_rank_with_one_exit_status_and_no_traceback(tmp_path):
    import signal
    import time

    rng = np.random.default_rng(3)
    (tmp_path / "data" / "clean").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "data" / "clean" / "0.png")
    config = _config(tmp_path, cpu_ranks=2)
    config["train"].update(steps=100000, ckpt_every=100000)
    (tmp_path / "ranks.yaml").write_text(yaml.safe_dump(config))
    log = tmp_path / "runs" / "long" / "log.jsonl"
    cmd = [sys.executable, "-m", "airtool", "train", "--config", str(tmp_path / "ranks.yaml"), "--set", "name=long"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (log.is_file() and '"event": "step"' in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "death signal" not in err
