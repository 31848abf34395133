"""``airtool evaluate`` and ``airtool train`` through the real Typer app (CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from airtool.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine, 2 threads are several times slower here."""
    import torch

    torch.set_num_threads(1)


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(3):
        target = rng.integers(0, 246, (32, 40, 3), dtype=np.uint8)
        _png(tmp_path / "pairs" / "target" / f"{i}.png", target)
        _png(tmp_path / "pairs" / "input" / f"{i}.png", target + 10)
    return tmp_path / "pairs"


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_evaluate_json_rows_then_means(pairs):
    result = runner.invoke(app, ["evaluate", "--model", "identity", "--data", str(pairs), "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = _json_lines(result.stdout)
    assert [r["name"] for r in rows[:-1]] == ["0", "1", "2"]
    expected = 10 * np.log10(255**2 / 100)  # every pixel off by 10 levels
    assert all(r["psnr"] == pytest.approx(expected, abs=1e-6) for r in rows[:-1])
    assert rows[-1]["count"] == 3 and rows[-1]["psnr"] == pytest.approx(expected) and 0 < rows[-1]["ssim"] < 1


def test_evaluate_csv_and_markdown(pairs):
    csv_out = runner.invoke(app, ["evaluate", "-m", "identity", "--data", str(pairs), "--csv", "--limit", "2"])
    assert csv_out.exit_code == 0, csv_out.output
    lines = csv_out.stdout.splitlines()
    assert lines[0] == "image,PSNR,SSIM,s/img" and lines[-1].startswith("mean,28.13,") and len(lines) == 4
    md = runner.invoke(app, ["evaluate", "-m", "identity", "--data", str(pairs), "--markdown", "--protocol", "basicsr-y",
                             "--crop-border", "2"])
    assert md.exit_code == 0, md.output
    assert "| image | PSNR | SSIM | s/img |" in md.stdout and "protocol basicsr-y" in md.stdout


def test_evaluate_suite_lists_missing_sets(tmp_path: Path, pairs):
    import shutil

    shutil.copytree(pairs, tmp_path / "root" / "Rain100L")
    result = runner.invoke(app, ["evaluate", "-m", "identity", "--suite", "3task", "--data-root", str(tmp_path / "root"),
                                 "--json"])
    assert result.exit_code == 0, result.output
    rows = _json_lines(result.stdout)
    assert [r["status"] for r in rows[:-1]] == ["missing", "ok", "missing", "missing", "missing"]
    assert rows[-1]["count"] == 1 and len(rows[-1]["missing"]) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "--csv"], "at most one of --json, --csv and --markdown"),
        (["--protocol", "matlab"], "--protocol 'matlab'"),
        (["--task", "noise:abc"], "noise:SIGMA"),
    ],
)
def test_evaluate_usage_errors(pairs, args, message):
    result = runner.invoke(app, ["evaluate", "-m", "identity", "--data", str(pairs), *args])
    assert result.exit_code == 2 and message in result.stderr


def test_train_lists_presets():
    result = runner.invoke(app, ["train", "--list-configs"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert {"cpu-small", "symunet-aio3", "anyir-aio5", "daair-aio3", "ndr-restore-aio3"} <= set(names)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "nope"], "unknown training config 'nope'; presets: anyir-aio3"),
        (["--config", "cpu-small", "--set", "train.steps=abc"], "train.steps: expected int, got str 'abc'"),
        (["--config", "cpu-small", "--set", "train.optim.lr_base=1"], "train.optim.lr_base: unknown key"),
        ([], "pass --config NAME|FILE to start a run, or --resume RUN"),
        (["--resume", "no-such-run"], "not a run folder"),
    ],
)
def test_train_usage_errors(args, message):
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_train_resume_and_export_end_to_end(tmp_path: Path, pairs):
    rng = np.random.default_rng(1)
    for i in range(3):
        _png(tmp_path / "data" / "clean" / f"{i}.png", rng.integers(0, 256, (36, 36, 3), dtype=np.uint8))
    config = {
        "name": "cli-tiny", "output_dir": str(tmp_path / "runs"), "model": {"name": "symunet", "variant": "tiny"},
        "data": {"root": str(tmp_path / "data"), "crop": 32, "batch_size": 1, "workers": 0,
                 "sources": [{"path": "clean", "task": "noise", "sigmas": [25]}]},
        "val": {"every": 0}, "train": {"steps": 1, "ckpt_every": 1, "device": "cpu"},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    first = runner.invoke(app, ["train", "--config", str(tmp_path / "tiny.yaml"), "--json"])
    assert first.exit_code == 0, first.output
    events = _json_lines(first.stdout)
    assert events[-1]["event"] == "result" and events[-1]["step"] == 1
    run = tmp_path / "runs" / "cli-tiny"
    again = runner.invoke(app, ["train", "--resume", str(run), "--set", "train.steps=2", "--quiet"])
    assert again.exit_code == 0, again.output
    assert "to step 2" in again.stderr and yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 2
    out = tmp_path / "weights" / "tiny.safetensors"
    exported = runner.invoke(app, ["train", "export", str(run), "--out", str(out), "--manifest", str(out.parent / "manifest.json")])
    assert exported.exit_code == 0, exported.output
    entry = json.loads((out.parent / "manifest.json").read_text())["files"]["tiny.safetensors"]
    assert entry["steps"] == 2 and len(entry["command"]["train"]) == 2
    scored = runner.invoke(app, ["evaluate", "-m", "symunet", "-w", str(out), "--data", str(pairs), "--json"])
    assert scored.exit_code == 0, scored.output
    assert _json_lines(scored.stdout)[-1]["count"] == 3


@pytest.mark.parametrize(("rank", "bar"), [(None, True), ("0", True), ("1", False)])
def test_only_rank_0_draws_the_progress_bar_on_a_terminal(monkeypatch, rank, bar):
    import sys

    from airtool.cli.train import _Reporter

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    if rank is None:
        monkeypatch.delenv("RANK", raising=False)
    else:
        monkeypatch.setenv("RANK", rank)
    with _Reporter(json_out=False, quiet=False) as reporter:
        assert (reporter.bar is not None) == bar


def _tiny_run_config(tmp_path: Path, steps: int) -> Path:
    """A symunet-tiny run of ``steps`` steps on three noisy crops; its folder is runs/cli-tiny."""
    rng = np.random.default_rng(1)
    for i in range(3):
        _png(tmp_path / "data" / "clean" / f"{i}.png", rng.integers(0, 256, (36, 36, 3), dtype=np.uint8))
    config = {
        "name": "cli-tiny", "output_dir": str(tmp_path / "runs"), "model": {"name": "symunet", "variant": "tiny"},
        "data": {"root": str(tmp_path / "data"), "crop": 32, "batch_size": 1, "workers": 0,
                 "sources": [{"path": "clean", "task": "noise", "sigmas": [25]}]},
        "val": {"every": 0}, "train": {"steps": steps, "ckpt_every": 100, "device": "cpu"},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_ctrl_c_stops_training_with_a_checkpoint_and_exits_130(tmp_path: Path, monkeypatch):
    import os
    import signal

    from airtool.cli import train as cli_train

    heard = cli_train._Reporter.__call__

    def ctrl_c_after_step_2(self, event):
        heard(self, event)
        if event.get("event") == "step" and event["step"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(cli_train._Reporter, "__call__", ctrl_c_after_step_2)
    result = runner.invoke(app, ["train", "--config", str(_tiny_run_config(tmp_path, 6)), "--quiet"])
    assert result.exit_code == 128 + signal.SIGINT, result.output
    checkpoint = tmp_path / "runs" / "cli-tiny" / "checkpoints" / "step-00000002.pt"
    assert checkpoint.is_file()
    assert f"stopped by signal 2 at step 2; checkpoint kept: {checkpoint}" in result.stderr
    assert "airtool train --resume" in result.stderr.splitlines()[-1]


def test_time_limit_sets_the_runs_limit_in_seconds(tmp_path: Path):
    result = runner.invoke(app, ["train", "--config", str(_tiny_run_config(tmp_path, 1)), "--time-limit", "90m",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "runs" / "cli-tiny" / "config.yaml").read_text())
    assert saved["train"]["time_limit_s"] == 5400
    assert "--time-limit" in runner.invoke(app, ["train", "--help"]).stdout


@pytest.mark.parametrize("value", ["0", "-5", "abc", "2x", "inf", ""])
def test_a_bad_time_limit_is_one_usage_line(value):
    result = runner.invoke(app, ["train", "--config", "cpu-small", "--time-limit", value])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"airtool: error: --time-limit {value!r}: give a positive number of seconds, or e.g. 90m or 2h"]


def test_export_writes_only_the_file_named_with_its_entry_inside(tmp_path: Path):
    from airtool.models.weights_info import describe, embedded_entry, sha256_of

    trained = runner.invoke(app, ["train", "--config", str(_tiny_run_config(tmp_path, 1)), "--quiet"])
    assert trained.exit_code == 0, trained.output
    run, out = tmp_path / "runs" / "cli-tiny", tmp_path / "w" / "tiny.safetensors"
    exported = runner.invoke(app, ["train", "export", str(run), "--out", str(out), "--dtype", "fp32"])
    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny.safetensors"]
    inside = embedded_entry(out)
    assert inside["steps"] == 1 and "sha256" not in inside and inside["command"]["export"].startswith("airtool ")
    info = describe(out)
    assert (info.steps, info.tasks, info.sha256) == (1, ("noise",), sha256_of(out))
    listed = tmp_path / "lists" / "manifest.json"
    again = runner.invoke(app, ["train", "export", str(run), "--out", str(out), "--dtype", "fp32",
                                "--manifest", str(listed)])
    assert again.exit_code == 0 and f"entry added to {listed}" in again.stderr
    entry = json.loads(listed.read_text())["files"]["tiny.safetensors"]
    assert entry == {**embedded_entry(out), "sha256": sha256_of(out)}
    bad = runner.invoke(app, ["train", "export", str(run), "--out", str(out), "--manifest", str(tmp_path / "m.txt")])
    assert bad.exit_code == 2 and "give a .json file or a folder" in bad.stderr
