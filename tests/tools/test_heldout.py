"""tools/heldout.py: a weights file scored on a preset's held-out crops, as its runs validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from airtool.config import to_yaml
from airtool.engine.training import train as T
from tests.engine.training.test_train import make_train_data, tiny_config
from tools.heldout import heldout_scores


def test_heldout_scores_match_the_runs_own_validation(tmp_path: Path):
    cfg = tiny_config(make_train_data(tmp_path / "data"), tmp_path / "runs", steps=2, ckpt_every=2)
    preset = tmp_path / "tiny.yaml"
    preset.write_text(to_yaml(cfg))
    result = T.train(cfg)
    weights = tmp_path / "tiny.safetensors"
    T.export_run(result.run, weights, dtype="fp32")
    scores = heldout_scores(weights, str(preset))
    assert scores["val_psnr"] == pytest.approx(result.val["val_psnr"], abs=1e-3)
    assert scores["val_psnr_noise"] == pytest.approx(result.val["val_psnr_noise"], abs=1e-3)
