"""api.train / export / evaluate / bench / models and the one progress protocol (events, tqdm)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from airtool import api
from airtool.cli import app
from airtool.engine.evaluation.evaluate import EvalOptions
from airtool.engine.inference.bench import BenchOptions
from airtool.errors import UsageError
from tests.engine.training.test_train import make_train_data, tiny_config


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _pairs(root: Path, n: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("input", "target"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        clean = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        Image.fromarray(clean).save(root / "target" / f"{i}.png")
        noisy = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(root / "input" / f"{i}.png")
    return root


def test_models_is_what_the_cli_prints():
    rows = api.models()
    assert [r["name"] for r in rows][0] == "symunet"
    printed = json.loads(CliRunner().invoke(app, ["models", "--json"]).stdout)
    assert printed == json.loads(json.dumps(rows))


def test_train_and_export_from_python_with_events(tmp_path: Path):
    events: list[dict] = []
    cfg = tiny_config(make_train_data(tmp_path / "data"), tmp_path / "runs", steps=2)
    result = api.train(cfg, on_event=events.append)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("step") == 2
    assert result.step == 2
    exported = api.export(result.run, tmp_path / "w" / "tiny.safetensors", dtype="fp32")
    assert exported.path.is_file() and exported.step == 2
    assert exported.manifest is None and [p.name for p in exported.path.parent.iterdir()] == ["tiny.safetensors"]
    beside = api.export(result.run, exported.path, dtype="fp32", manifest=True)  # as before: the one beside
    assert beside.manifest == exported.path.parent / "manifest.json"
    assert json.loads(beside.manifest.read_text())["files"]["tiny.safetensors"]["sha256"] == beside.sha256
    with pytest.raises(UsageError, match="must end in .safetensors"):
        api.export(result.run, tmp_path / "w" / "tiny.pt")
    with pytest.raises(UsageError, match="--config NAME|FILE"):
        api.train()


def test_evaluate_counts_images_as_events(tmp_path: Path):
    events: list[dict] = []
    report = api.evaluate(EvalOptions(model="identity", data=_pairs(tmp_path / "set")), on_event=events.append)
    assert [(e["event"], e["done"], e["total"]) for e in events] == [("image", i, 3) for i in (1, 2, 3)]
    assert [e["psnr"] for e in events] == pytest.approx([row.psnr for row in report.rows])


def test_bench_steps_are_progress_events_that_reach_the_total():
    events: list[dict] = []
    options = BenchOptions(models=("identity",), sizes=(16,), precisions=("fp32",), device="cpu", warmup=1, repeats=2)
    results = list(api.bench(options, on_event=events.append))
    assert len(results) == 1
    done = [e["done"] for e in events]
    assert done == sorted(done) and done[-1] == events[-1]["total"] == 1 + 1 + 2  # MACs, warm-up, 2 timed


def test_progress_true_draws_a_tqdm_bar_for_python_callers(tmp_path: Path, capsys):
    src = _pairs(tmp_path / "set", n=2) / "input"
    report = api.restore([str(src)], str(tmp_path / "out"), api.RestoreOptions(model="identity"), progress=True)
    assert report.exit_code == 0
    err = capsys.readouterr().err
    assert "restoring" in err and "2/2" in err
    api.evaluate(EvalOptions(model="identity", data=tmp_path / "set"), progress=True)
    assert "evaluating identity" in capsys.readouterr().err


def test_event_reporter_turns_a_batch_into_file_events(tmp_path: Path):
    events: list[dict] = []
    src = _pairs(tmp_path / "set", n=2) / "input"
    api.restore([str(src)], str(tmp_path / "out"), api.RestoreOptions(model="identity"),
                reporter=api.EventReporter(events.append))
    files = [e for e in events if e["event"] == "file"]
    assert [(e["done"], e["total"], e["status"]) for e in files] == [(1, 2, "done"), (2, 2, "done")]
    assert events[0]["event"] == "start" and events[-1]["event"] == "finish" and events[-1]["done"] == 2


def test_a_third_metric_is_one_registry_entry(tmp_path: Path, monkeypatch):
    """Registering a metric makes evaluate report it per image and as a mean, with no other change."""
    from airtool import metrics

    mae = metrics.Metric("mae", lambda a, b, spec: float(np.abs(a - b).mean()), higher_is_better=False)
    monkeypatch.setitem(metrics.METRICS, "mae", mae)
    data = _pairs(tmp_path / "set")
    report = api.evaluate(EvalOptions(model="identity", data=data))
    assert all(row.others["mae"] > 0 for row in report.rows)
    assert report.summary()["mae"] == pytest.approx(np.mean([row.others["mae"] for row in report.rows]))
    printed = CliRunner().invoke(app, ["evaluate", "-m", "identity", "--data", str(data), "--json"]).stdout
    lines = [json.loads(line) for line in printed.splitlines()]
    assert all("mae" in line for line in lines) and len(lines) == 4
