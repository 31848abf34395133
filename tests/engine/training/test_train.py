"""Training loop: steps, exact resume (step count and loss continue), damaged checkpoints, export."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from airtool.config import from_dict
from airtool.engine.training import train as T
from airtool.errors import AirtoolError, ConfigError, WeightsError


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine, 2 threads are several times slower here."""
    import torch

    torch.set_num_threads(1)


def make_train_data(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(4):
        (root / "clean").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / "clean" / f"{i}.png")
    return root


def tiny_config(root: Path, out: Path, **train: object) -> T.TrainConfig:
    """SymUNet tiny, 32x32 crops, batch 2, a checkpoint every step (keep 2)."""
    loop = {"steps": 4, "log_every": 1, "ckpt_every": 1, "keep_checkpoints": 2, "device": "cpu",
            "optim": {"name": "adamw", "lr": 1e-3}, "schedule": {"warmup_steps": 1},
            "loss": {"l1": 1.0, "fft": 0.1}, "grad_clip": 0.5}
    loop.update(train)
    return from_dict(T.TrainConfig, {
        "name": "tiny", "seed": 3, "output_dir": str(out), "model": {"name": "symunet", "variant": "tiny"},
        "data": {"root": str(root), "crop": 32, "batch_size": 2, "workers": 0,
                 "sources": [{"path": "clean", "task": "noise", "sigmas": [25], "holdout": 1}]},
        "val": {"every": 2, "crop": 32, "limit": 1},
        "train": loop,
    })


def step_losses(run: Path) -> dict[int, float]:
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return {e["step"]: e["loss"] for e in events if e["event"] == "step"}


class Stop(Exception):
    pass


def interrupt_at(step: int):
    def on_event(event: dict) -> None:
        if event["event"] == "checkpoint" and event["step"] == step:
            raise Stop  # as if the process died right after that checkpoint
    return on_event


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_train_data(tmp_path_factory.mktemp("traindata"))


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory) -> tuple[T.TrainResult, dict[int, float]]:
    """An uninterrupted four-step run."""
    cfg = tiny_config(data, tmp_path_factory.mktemp("ref"))
    result = T.train(cfg)
    return result, step_losses(result.run)


def test_uninterrupted_run(reference):
    result, losses = reference
    assert result.step == 4 and sorted(losses) == [1, 2, 3, 4]
    assert [p.name for p in T.list_checkpoints(result.run / "checkpoints")] == ["step-00000004.pt", "step-00000003.pt"]
    assert result.val is not None and result.val["val_count"] == 1 and np.isfinite(result.val["val_psnr"])
    assert (result.run / "config.yaml").is_file()
    ckpt = torch.load(result.run / "checkpoints" / "step-00000004.pt", weights_only=True)  # plain, safe types only
    assert ckpt["step"] == 4 and set(ckpt["rng"]) >= {"torch", "numpy", "python"}


@pytest.fixture(scope="module")
def interrupted(data: Path, tmp_path_factory) -> Path:
    """The same run, stopped right after its step-2 checkpoint."""
    out = tmp_path_factory.mktemp("interrupted")
    with pytest.raises(Stop):
        T.train(tiny_config(data, out), on_event=interrupt_at(2))
    return out / "tiny"


def _copy(run: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, tmp_path / "tiny"))


def test_resume_continues_step_count_and_loss(interrupted, reference, tmp_path: Path):
    _, expected = reference
    run = _copy(interrupted, tmp_path)
    assert step_losses(run).keys() == {1, 2}
    result = T.train(T.load_run_config(run), run=run, resume=True)
    assert result.step == 4 and result.resumed_from.name == "step-00000002.pt"
    losses = step_losses(run)
    assert sorted(losses) == [1, 2, 3, 4]
    for step in (3, 4):  # same loss as the run that was never interrupted
        assert losses[step] == pytest.approx(expected[step], rel=1e-6, abs=1e-7)


def test_truncated_newest_checkpoint_falls_back_to_the_previous(interrupted, reference, tmp_path: Path):
    _, expected = reference
    run = _copy(interrupted, tmp_path)
    newest = run / "checkpoints" / "step-00000002.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    events: list[dict] = []
    result = T.train(T.load_run_config(run), run=run, resume=True, on_event=events.append)
    assert result.resumed_from.name == "step-00000001.pt" and result.step == 4
    assert any(e["event"] == "checkpoint_skipped" and "step-00000002.pt" in e["reason"] for e in events)
    resumed = [e for e in events if e["event"] == "step"]
    assert resumed[0]["step"] == 2 and resumed[0]["loss"] == pytest.approx(expected[2], rel=1e-6, abs=1e-7)
    assert resumed[1]["loss"] == pytest.approx(expected[3], rel=1e-6, abs=1e-7)


def test_disk_full_during_a_checkpoint_is_one_clear_error_and_keeps_the_older_ones(interrupted, tmp_path, monkeypatch):
    """ENOSPC half way through step 3's checkpoint: a one-line OutputError, no partial file that
    --resume could mistake for a checkpoint, and steps 1-2 untouched."""
    import errno

    from airtool.errors import OutputError
    from airtool.io.atomic import TMP_MARK

    run = _copy(interrupted, tmp_path)
    folder = run / "checkpoints"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real_save = torch.save

    def disk_full(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("step") == 3:
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OutputError) as err:
        T.train(T.load_run_config(run), run=run, resume=True)
    assert str(err.value) == (f"{folder / 'step-00000003.pt'}: cannot write checkpoint (No space left on device); "
                              "the older checkpoints are kept")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not any(TMP_MARK in p.name for p in folder.iterdir())
    assert T.load_latest_checkpoint(folder)[1].name == "step-00000002.pt"


def test_no_readable_checkpoint_is_an_error(tmp_path: Path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "step-00000001.pt").write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="no readable checkpoint"):
        T.load_latest_checkpoint(folder)


def test_existing_run_needs_resume(data, reference):
    result, _ = reference
    cfg = tiny_config(data, result.run.parent)
    with pytest.raises(ConfigError, match="already has checkpoints; continue it with --resume"):
        T.train(cfg)


def test_export_writes_ema_weights_and_a_manifest_entry(reference, tmp_path: Path):
    from airtool.models.weights import load_model, sha256_of

    result, _ = reference
    out = tmp_path / "weights" / "symunet-tiny-test.safetensors"
    exported = T.export_run(result.run, out, command="airtool train export ...", manifest=out.parent / "manifest.json")
    manifest = json.loads((out.parent / "manifest.json").read_text())["files"][out.name]
    assert manifest["sha256"] == sha256_of(out) == exported.sha256
    assert (manifest["model"], manifest["variant"], manifest["steps"]) == ("symunet", "tiny", 4)
    assert {"data", "hardware", "wall_time_s", "command", "config", "scores", "setting"} <= set(manifest)
    model, _ = load_model("symunet", out)
    ckpt = T.load_checkpoint(T.list_checkpoints(result.run / "checkpoints")[0])
    for key, value in model.state_dict().items():
        assert torch.equal(value, ckpt["ema"][key].to(torch.bfloat16).float())  # stored as bf16


def test_a_finite_loss_with_nan_gradients_stops_before_the_update(data, tmp_path: Path, monkeypatch):
    total_loss = T.total_loss

    def loss_with_a_nan_gradient(spec, restored, clean, aux):
        loss, parts = total_loss(spec, restored, clean, aux)
        return loss + torch.sqrt(restored.sum() * 0), parts  # adds 0; its gradient is 0 / 0

    monkeypatch.setattr(T, "total_loss", loss_with_a_nan_gradient)
    with pytest.raises(AirtoolError, match=r"gradient norm nan at step 1"):
        T.train(tiny_config(data, tmp_path))


def test_schedule_warmup_then_cosine():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    cfg = T.ScheduleConfig(name="cosine", warmup_steps=2, warmup_start_factor=0.5, horizon=6, min_lr=0.0)
    sched = T.build_scheduler(cfg, opt, steps=6)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.5) and lrs[2] == pytest.approx(1.0)
    assert lrs[3] == pytest.approx(0.5 * (1 + np.cos(np.pi / 4))) and lrs[5] < lrs[4] < lrs[3]


def test_fp16_training_needs_a_cuda_device(data, tmp_path: Path):
    cfg = tiny_config(data, tmp_path, precision="fp16")
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        T.train(cfg)


def test_bf16_autocast_step_on_cpu(data, tmp_path: Path):
    cfg = tiny_config(data, tmp_path, precision="bf16", steps=1)
    cfg = replace(cfg, val=replace(cfg.val, every=0))
    result = T.train(cfg)
    assert result.step == 1 and np.isfinite(result.loss)


def test_se_symunet_trains_with_its_frozen_clip_and_exports_without_it(data, tmp_path, tiny_clip_dir):
    from safetensors import safe_open

    from airtool.models import get_spec
    from airtool.models.weights import load_model

    cfg = tiny_config(data, tmp_path, steps=2)
    cfg = replace(cfg, model=T.ModelConfig("se-symunet", "tiny", str(tiny_clip_dir)))
    result = T.train(cfg)
    assert result.step == 2 and result.val is not None  # validation ran on the shared-encoder copy
    ckpt = T.load_checkpoint(result.checkpoint)
    network = get_spec("se-symunet").create("tiny")
    assert set(ckpt["model"]) == set(ckpt["ema"]) == set(network.state_dict())  # no CLIP tensors
    assert len(ckpt["optimizer"]["param_groups"][0]["params"]) == len(list(network.parameters()))
    assert ckpt["clip"].startswith("CLIP vision 2x32")
    exported = T.export_run(result.run, tmp_path / "se.safetensors")
    with safe_open(str(exported.path), framework="pt") as fh:
        assert set(fh.keys()) == set(network.state_dict()) and "CLIP vision" in fh.metadata()["airtool_clip"]
    model, _ = load_model("se-symunet", exported.path, clip=tiny_clip_dir)
    assert model(torch.rand(1, 3, 20, 30)).shape == (1, 3, 20, 30)


def test_se_symunet_without_a_clip_fails_before_the_run_folder_is_made(data, tmp_path, monkeypatch):
    from airtool.errors import UsageError

    monkeypatch.delenv("AIRTOOL_CLIP", raising=False)
    cfg = replace(tiny_config(data, tmp_path), model=T.ModelConfig("se-symunet", "tiny"))
    with pytest.raises(UsageError, match=r"model\.clip"):
        T.train(cfg)
    assert not (tmp_path / "tiny").exists()


def test_se_symunet_preset_is_the_symunet_recipe():
    se, sym = T.load_train_config("se-symunet-aio3"), T.load_train_config("symunet-aio3")
    assert se.model == T.ModelConfig("se-symunet", "paper", None)
    assert (se.train, se.data, se.val, se.seed) == (sym.train, sym.data, sym.val, sym.seed)
