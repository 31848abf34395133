"""The GPU training script, end to end on the CPU: a few steps of a tiny model, then the export."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_train_script_trains_exports_and_leaves_its_files(tmp_path: Path, shared_data: Path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "AIRTOOL_GPU_SMOKE": "1", "TMPDIR": str(tmp_path),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", "tools/gpu_train.sh", "symunet", "--set", f"data.root={shared_data}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr + (tmp_path / "out" / "train.log").read_text()
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {"symunet-aio3.safetensors", "manifest.json", "metrics.csv",
                                                "log.jsonl", "train.log", "gpu.txt"}
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows if r["event"] == "step"] == [1, 2, 3, 4, 5, 6]
    from airtool.models.weights import load_model

    model, spec = load_model("symunet", str(out / "symunet-aio3.safetensors"), "tiny")  # strict load
    assert spec.name == "symunet" and sum(p.numel() for p in model.parameters()) > 0
    assert not list(tmp_path.glob("airtool-gpu-runs.*"))  # the checkpoints were cleaned up
