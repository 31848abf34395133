"""tools/grow_symunet.py: the shipped small SymUNet grown to the paper size, placed on the
campaign's schedule, with its lineage, ready for ``airtool train campaign --weights``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from airtool.engine.training.campaign import shipped_step
from airtool.models.weights import load_model
from tests.conftest import ROOT
from tools.grow_symunet import grow_file

SMALL = ROOT / "weights" / "symunet-s-aio3.safetensors"


def test_grown_file_restores_as_the_small_one_and_sits_at_the_step(tmp_path: Path):
    small_dir = tmp_path / "small"
    small_dir.mkdir()
    shutil.copy(SMALL, small_dir / SMALL.name)
    entry = json.loads((ROOT / "weights" / "manifest.json").read_text())["files"][SMALL.name]
    (small_dir / "manifest.json").write_text(json.dumps({"files": {SMALL.name: entry}}))
    out = tmp_path / "grown" / "symunet-aio3.safetensors"
    grown_entry = grow_file(small_dir / SMALL.name, out, step=539)
    assert shipped_step(out) == 539  # where the campaign continues it
    assert grown_entry["lineage"][-1]["grown_from"]["sha256"] == entry["sha256"]
    big, _ = load_model("symunet", out)
    small, _ = load_model("symunet", small_dir / SMALL.name)
    assert sum(p.numel() for p in big.parameters()) == 22_288_827
    x = torch.rand(1, 3, 48, 40)
    with torch.no_grad():
        torch.testing.assert_close(big.float()(x), small.float()(x), rtol=0, atol=1e-4)
