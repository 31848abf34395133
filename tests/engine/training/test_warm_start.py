"""Warm start (model.init): strict load of an exported file, step-0 validation, lineage in the manifest."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from airtool.engine.training import train as T
from airtool.errors import WeightsError
from tests.engine.training.test_train import make_train_data, tiny_config


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def first_export(tmp_path_factory) -> tuple[Path, Path]:
    root = make_train_data(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("first")
    result = T.train(tiny_config(root, out, steps=2))
    weights = out / "weights" / "symunet-tiny.safetensors"
    T.export_run(result.run, weights, command="export one", manifest=weights.parent / "manifest.json")
    return root, weights


def _warm(root: Path, out: Path, init: Path, **train: object) -> T.TrainConfig:
    cfg = tiny_config(root, out, **train)
    return replace(cfg, model=replace(cfg.model, init=str(init)))


def test_warm_start_begins_at_the_file_and_validates_step_0(first_export, tmp_path: Path):
    from airtool.models.weights import load_model

    root, weights = first_export
    events: list[dict] = []
    T.train(_warm(root, tmp_path, weights, steps=1), on_event=events.append)
    vals = [e for e in events if e["event"] == "val"]
    assert vals[0]["step"] == 0 and vals[-1]["step"] == 1
    ckpt = T.load_checkpoint(T.list_checkpoints(tmp_path / "tiny" / "checkpoints")[-1])
    assert ckpt["init"]["steps"] == 2 and ckpt["init"]["file"] == str(weights)
    start, _ = load_model("symunet", weights)
    trained = ckpt["model"]
    moved = [k for k, v in start.state_dict().items() if not torch.equal(v, trained[k].to(torch.bfloat16).float())]
    assert moved, "one step should move some weights away from the start"


def test_export_of_a_warm_start_carries_the_lineage(first_export, tmp_path: Path):
    root, weights = first_export
    result = T.train(_warm(root, tmp_path, weights, steps=3))
    second = tmp_path / "w2" / "symunet-tiny.safetensors"
    T.export_run(result.run, second, command="export two", manifest=second.parent / "manifest.json")
    entry = json.loads((second.parent / "manifest.json").read_text())["files"][second.name]
    assert [run["steps"] for run in entry["lineage"]] == [2, 3]
    assert entry["total_steps"] == 5 and entry["init"]["steps"] == 2
    first = json.loads((weights.parent / "manifest.json").read_text())["files"][weights.name]
    assert entry["lineage"][0]["sha256"] == first["sha256"] == entry["init"]["sha256"]
    assert entry["total_wall_time_s"] >= first["wall_time_s"]


def test_warm_start_refuses_another_models_weights(first_export, tmp_path: Path):
    root, weights = first_export
    cfg = _warm(root, tmp_path, weights, steps=1)
    cfg = replace(cfg, model=replace(cfg.model, name="daair", variant="tiny"))
    with pytest.raises(WeightsError, match="not of 'daair'"):
        T.train(cfg)


def test_warm_start_from_a_missing_file_is_one_error(first_export, tmp_path: Path):
    root, _ = first_export
    with pytest.raises(WeightsError, match="not found"):
        T.train(_warm(root, tmp_path, tmp_path / "nope.safetensors", steps=1))


def test_the_lineage_also_comes_from_the_entry_inside_a_file_exported_alone(first_export, tmp_path: Path):
    from airtool.models.weights_info import sha256_of

    root, weights = first_export
    alone = tmp_path / "alone" / "symunet-tiny.safetensors"
    alone.parent.mkdir()
    alone.write_bytes(weights.read_bytes())  # no manifest beside it: only the entry stored inside
    result = T.train(_warm(root, tmp_path, alone, steps=3))
    second = tmp_path / "w2" / "symunet-tiny.safetensors"
    T.export_run(result.run, second, command="export two", manifest=second.parent / "manifest.json")
    entry = json.loads((second.parent / "manifest.json").read_text())["files"][second.name]
    assert [run["steps"] for run in entry["lineage"]] == [2, 3] and entry["total_steps"] == 5
    assert entry["lineage"][0]["sha256"] == sha256_of(alone) == entry["init"]["sha256"]
    assert entry["lineage"][-1]["sha256"] == sha256_of(second)
