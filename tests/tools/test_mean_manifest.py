"""tools/mean_manifest.py: a mean's entry keeps the shared lineage, both runs and the one it replaces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.mean_manifest import main, mean_entry

NAME = "daair-aio3.safetensors"
SHIPPED = {"file": NAME, "sha256": "s" * 64, "steps": 0, "wall_time_s": 0, "command": "older mean"}


def _run(sha: str, steps: int, seconds: float, seed: int, init_sha: str = "s" * 64) -> dict:
    own = {"file": NAME, "sha256": sha, "steps": steps, "wall_time_s": seconds, "command": [f"train seed={seed}"]}
    return {
        "sha256": sha, "model": "daair", "variant": "paper", "setting": "aio3", "config": {"model": {}},
        "data": [{"task": "rain"}], "dtype": "bf16", "hardware": "1x test CPU", "steps": steps,
        "wall_time_s": seconds, "init": {"file": "weights/" + NAME, "sha256": init_sha, "steps": 100},
        "lineage": [{"file": NAME, "sha256": "r" * 64, "steps": 100, "wall_time_s": 50.0}, SHIPPED, own],
        "command": {"train": [f"train seed={seed}"], "export": f"export {seed}"},
        "scores": {"heldout_val": {"step": steps, "val_psnr": 27.0 + seed / 100}},
    }


def test_the_entry_sums_both_runs_and_keeps_the_lineage():
    previous = {"interpolated": {"a": {"sha256": "x"}, "t": 0.5}, "command": {"evaluate": "evaluate it"}}
    entry = mean_entry(_run("a" * 64, 30, 60.0, 1), _run("b" * 64, 20, 40.0, 2), name=NAME, sha256="m" * 64,
                       labels=("I", "J"), folders=("runs/cand-i", "runs/cand-j"), previous=previous,
                       scores={"promptir_3task": {"daair": {"avg": [29.5, 0.9]}}}, notes="n", interpolate="avg")
    assert [r["sha256"][0] for r in entry["lineage"]] == ["r", "s", "a", "b", "m"]
    assert (entry["steps"], entry["wall_time_s"]) == (50, 100.0)
    assert (entry["total_steps"], entry["total_wall_time_s"]) == (150, 150.0)
    assert entry["interpolated"]["previous"] == previous["interpolated"]
    assert entry["interpolated"]["a"] == {"file": "run I (runs/cand-i)", "sha256": "a" * 64, "steps": 30}
    assert entry["scores"]["heldout_val_of_runs"]["J"]["val_psnr"] == pytest.approx(27.02)
    assert entry["scores"]["promptir_3task"]["daair"]["avg"] == [29.5, 0.9]
    assert entry["command"]["train"] == ["train seed=1", "train seed=2"]
    assert entry["command"]["evaluate"] == "evaluate it"


def test_runs_from_different_files_are_refused():
    with pytest.raises(ValueError, match="different files"):
        mean_entry(_run("a" * 64, 3, 6.0, 1), _run("b" * 64, 2, 4.0, 2, init_sha="o" * 64), name=NAME,
                   sha256="m" * 64, labels=("I", "J"), folders=("i", "j"), previous=None, scores={},
                   notes="", interpolate="")


def _manifest(folder: Path, entry: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"files": {NAME: entry}}))


def test_the_command_replaces_the_entry_beside_the_mean(tmp_path: Path):
    _manifest(tmp_path / "cand-i", _run("a" * 64, 30, 60.0, 1))
    _manifest(tmp_path / "cand-j", _run("b" * 64, 20, 40.0, 2))
    weights = tmp_path / "weights"
    _manifest(weights, {**SHIPPED, "interpolated": {"t": 0.5}, "command": {"evaluate": "evaluate it"}})
    (weights / NAME).write_bytes(b"the mean")
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps({"promptir_3task": {"daair": {"avg": [29.6, 0.88]}}}))
    argv = [str(weights / NAME), str(tmp_path / "cand-i"), str(tmp_path / "cand-j"), "--labels", "I", "J",
            "--scores", str(scores), "--notes", "mean of I and J", "--interpolate", "avg i j"]
    main(argv)
    entry = json.loads((weights / "manifest.json").read_text())["files"][NAME]
    assert entry["sha256"] != SHIPPED["sha256"] and len(entry["sha256"]) == 64
    assert entry["interpolated"]["previous"] == {"t": 0.5}
    assert entry["notes"] == "mean of I and J"
    assert entry["command"]["evaluate"] == "evaluate it"
    with pytest.raises(ValueError, match="already describes"):  # run twice: the shipped entry would be lost
        main(argv)
