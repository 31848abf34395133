"""The CBM3D side-by-side benchmark: the same noisy inputs as evaluate, scored the same way."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from airtool.engine.evaluation.evaluate import PROTOCOLS, Task, find_pairs, iter_inputs
from tools import bench_cbm3d as B


@pytest.fixture
def clean_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    return tmp_path


def test_noisy_inputs_are_evaluates_and_every_k_keeps_the_stream(clean_folder: Path):
    task = Task("noise", 25.0)
    expected = [(p.name, d) for p, d, _ in iter_inputs(find_pairs(clean_folder, task), task, PROTOCOLS["promptir"])]
    every = B.noisy_pairs(clean_folder, 25.0, every=1)
    assert [n for n, _, _ in every] == [n for n, _ in expected]
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(every, expected, strict=True))
    second = B.noisy_pairs(clean_folder, 25.0, every=2)  # images 0 and 2, with the noise they get in a full run
    assert [n for n, _, _ in second] == ["0", "2"] and np.array_equal(second[1][1], expected[2][1])


def test_scores_use_the_promptir_metrics(clean_folder: Path):
    from airtool.metrics import METRIC_SPECS, score

    pairs = B.noisy_pairs(clean_folder, 25.0, every=1)
    row = B.score_method("identity", lambda noisy: noisy, pairs, log=lambda line: None)
    expected = np.mean([score(noisy, clean, METRIC_SPECS["promptir"])[0] for _, noisy, clean in pairs])
    assert row.count == 3 and row.psnr == pytest.approx(expected) and row.seconds_per_image >= 0
    assert "| identity |" in B.markdown([row], 25.0, "CBSD68")


def test_without_bm3d_it_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # import bm3d raises ImportError
    with pytest.raises(SystemExit, match="pip install bm3d"):
        B.cbm3d(25.0)
