"""Packing training data for a GPU machine: lossless, same layout, within the budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from airtool.engine.training.data import read_rgb
from tools.pack_train_data import pack


def make_root(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(3):
        for side in ("input", "target"):
            (root / "train/pairs" / side).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(root / f"train/pairs/{side}/{i:03d}.png")
    (root / "train/grey").mkdir(parents=True)
    flat = np.tile(np.arange(60, dtype=np.uint8), (30, 1))  # compresses well
    Image.fromarray(flat).save(root / "train/grey/a.png")
    return root


def test_pack_is_lossless_keeps_the_layout_and_records_what_it_took(tmp_path: Path):
    root = make_root(tmp_path / "data")
    record = pack(root, tmp_path / "pack", ["train/pairs", "train/grey"], budget=10**7)
    assert record["left_out"] == [] and record["folders"] == [
        {"path": "train/pairs", "units": 3, "of": 3}, {"path": "train/grey", "units": 1, "of": 1}]
    for src in root.rglob("*.png"):
        packed = next((tmp_path / "pack" / src.relative_to(root).parent).glob(src.stem + ".*"))
        assert np.array_equal(read_rgb(packed), read_rgb(src)), src  # the same pixels, grey included
    assert json.loads((tmp_path / "pack/PACK.json").read_text())["bytes"] == record["bytes"]


def test_a_paired_folder_over_the_budget_keeps_whole_pairs_and_stops(tmp_path: Path):
    root = make_root(tmp_path / "data")
    full = pack(root, tmp_path / "full", ["train/pairs"], budget=10**7)["bytes"]
    record = pack(root, tmp_path / "pack", ["train/pairs", "train/grey"], budget=int(full * 0.7))
    assert record["folders"] == [{"path": "train/pairs", "units": 2, "of": 3}]
    assert record["left_out"] == ["train/pairs: 1 of 3", "train/grey: all"]
    assert sorted(p.stem for p in (tmp_path / "pack/train/pairs/input").iterdir()) == ["000", "001"]
    assert sorted(p.stem for p in (tmp_path / "pack/train/pairs/target").iterdir()) == ["000", "001"]
    assert record["bytes"] <= int(full * 0.7)
