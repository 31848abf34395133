"""devtools/routing.py: the share of DaAIR's routers picking each task, per image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from airtool.devtools import routing
from airtool.engine.load import load_restorer
from airtool.models import get_spec
from airtool.models.daair import Router
from airtool.models.weights import save_weights


def _tiny_daair(path: Path) -> Path:
    torch.manual_seed(0)
    save_weights(get_spec("daair").create("tiny"), path, model="daair", variant="tiny", config={}, dtype="fp32")
    return path


def test_shares_count_every_router_and_follow_the_router_logits(tmp_path: Path):
    restorer = load_restorer("daair", _tiny_daair(tmp_path / "d.safetensors"), device="cpu", precision="fp32")
    routers = [m for m in restorer.model.modules() if isinstance(m, Router)]
    hooks_before = [len(r._forward_hooks) for r in routers]  # Restorer's own probe may hook them
    image = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    shares = routing.route_shares(restorer, image)
    assert list(shares) == ["noise", "rain", "haze"] and sum(shares.values()) == pytest.approx(1.0)
    assert all(v * len(routers) == pytest.approx(round(v * len(routers))) for v in shares.values())
    with torch.no_grad():  # force every router to pick "rain": the shares must follow
        for router in routers:
            router.fc.weight.zero_()
            router.fc.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    assert routing.route_shares(restorer, image) == {"noise": 0.0, "rain": 1.0, "haze": 0.0}
    assert [len(r._forward_hooks) for r in routers] == hooks_before  # ours are removed


def test_cli_reads_the_input_folder_and_prints_a_mean(tmp_path: Path, capsys):
    weights = _tiny_daair(tmp_path / "d.safetensors")
    for i in range(2):
        (tmp_path / "set" / "input").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((24, 24, 3), 60 * i, np.uint8)).save(tmp_path / "set" / "input" / f"{i}.png")
    routing.main(["--weights", str(weights), "--data", str(tmp_path / "set"), "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["image"] for r in lines] == ["0.png", "1.png", "mean"]
    assert lines[2]["rain"] == pytest.approx((lines[0]["rain"] + lines[1]["rain"]) / 2, abs=1e-4)
