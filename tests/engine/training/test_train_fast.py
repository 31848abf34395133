"""The training fast path: precision names, channels-last, optimiser implementations, metrics.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from airtool.config import from_dict
from airtool.engine.training import train as T
from airtool.errors import ConfigError
from airtool.models import get_spec
from tests.engine.training.test_train import make_train_data, tiny_config

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def loop(**fields: object) -> T.LoopConfig:
    return from_dict(T.LoopConfig, {"steps": 1, **fields})


def test_the_old_amp_key_is_refused_with_one_line_naming_its_replacement(tmp_path: Path):
    old = tmp_path / "old.yaml"
    old.write_text("base: cpu-small\nname: old\ntrain: {amp: bf16}\n")
    with pytest.raises(ConfigError) as err:
        T.load_train_config(old)
    assert str(err.value) == f"{old}: train.amp: no longer read; use train.precision: fp32|bf16|fp16"
    with pytest.raises(ConfigError, match=r"^train.amp: no longer read; use train.precision: fp32\|bf16\|fp16 \(in --set"):
        T.load_train_config("cpu-small", ["train.amp=fp32"])


def test_a_run_folder_saved_with_amp_null_still_loads(tmp_path: Path):
    """Run folders saved before ``amp`` was retired hold ``amp: null``; it never chose anything."""
    import yaml

    from airtool.config import to_dict

    saved = to_dict(T.load_train_config("cpu-small"))
    saved["train"]["amp"] = None
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert T.load_run_config(tmp_path) == T.load_train_config("cpu-small")


def test_auto_precision_trains_fp32_on_the_cpu_and_bf16_on_cuda(monkeypatch):
    spec = get_spec("symunet")
    monkeypatch.setenv("AIRTOOL_CPU_BF16", "1")  # bf16 hardware: CPU bf16 training is still an explicit choice
    assert T.train_precision(loop(), spec, CPU) == "fp32"
    assert T.train_precision(loop(precision="bf16"), spec, CPU) == "bf16"
    assert T.train_precision(loop(), spec, torch.device("cuda")) == "bf16"


def test_precision_outside_the_models_policy_is_refused():
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        T.train_precision(loop(precision="fp16"), get_spec("symunet"), CPU)
    from dataclasses import replace

    from airtool.models.spec import PrecisionPolicy

    fp32_only = replace(get_spec("symunet"), precision=PrecisionPolicy(cpu=("fp32",)))
    with pytest.raises(ConfigError, match="bf16 is not validated for symunet on cpu"):
        T.train_precision(loop(precision="bf16"), fp32_only, CPU)


def test_channels_last_is_the_cpu_default_and_can_be_switched_off():
    assert T.use_channels_last(loop(), CPU) is True
    assert T.use_channels_last(loop(channels_last=False), CPU) is False
    assert T.use_channels_last(loop(), torch.device("cuda")) is False


@pytest.mark.parametrize("impl", ["for-loop", "foreach", "fused"])
def test_every_optimiser_implementation_makes_the_same_update(impl):
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 4, 3)
    params = [p.detach().clone() for p in net.parameters()]
    reference = torch.optim.AdamW([torch.nn.Parameter(p.clone()) for p in params], lr=1e-2, weight_decay=1e-3)
    cfg = T.OptimConfig(lr=1e-2, weight_decay=1e-3, impl=impl)
    optimizer = T.build_optimizer(cfg, net.parameters(), CPU)
    for ref_param, param in zip(reference.param_groups[0]["params"], net.parameters(), strict=True):
        ref_param.grad = torch.full_like(ref_param, 0.5)
        param.grad = torch.full_like(param, 0.5)
    reference.step()
    optimizer.step()
    for ref_param, param in zip(reference.param_groups[0]["params"], net.parameters(), strict=True):
        torch.testing.assert_close(param, ref_param, rtol=1e-6, atol=1e-7)


def first_steps(tmp_path: Path, **train: object) -> T.Trainer:
    data = make_train_data(tmp_path / "data")
    cfg = tiny_config(data, tmp_path / "out", **train)
    (tmp_path / "run").mkdir()
    trainer = T.Trainer(cfg, tmp_path / "run", T.Dist(), None)
    gen = torch.Generator().manual_seed(1)
    clean = torch.rand(2, 3, 32, 32, generator=gen)
    batch = ((clean + 0.1 * torch.randn(2, 3, 32, 32, generator=gen)).clamp(0, 1), clean, torch.zeros(2).long())
    for _ in range(2):
        trainer.train_step(batch)
    return trainer


def test_channels_last_training_matches_nchw(tmp_path: Path):
    """Same seed, same batches: the weights after two steps agree within float rounding."""
    nchw = first_steps(tmp_path / "a", channels_last=False, optim={"name": "adamw", "lr": 1e-3, "impl": "for-loop"})
    fast = first_steps(tmp_path / "b", channels_last=True, optim={"name": "adamw", "lr": 1e-3, "impl": "fused"})
    assert fast.channels_last and fast.model.intro.weight.is_contiguous(memory_format=torch.channels_last)
    for (name, a), b in zip(nchw.model.state_dict().items(), fast.model.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=2e-5, msg=name)


def test_bf16_training_runs_and_says_so(tmp_path: Path):
    trainer = first_steps(tmp_path, precision="bf16")
    assert trainer.precision == "bf16"
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_metrics_csv_has_steps_and_per_task_validation(tmp_path: Path):
    data = make_train_data(tmp_path / "data")
    result = T.train(tiny_config(data, tmp_path / "out"))
    rows = list(csv.DictReader((result.run / T.METRICS_CSV).open()))
    steps = [r for r in rows if r["event"] == "step"]
    vals = [r for r in rows if r["event"] == "val"]
    assert [int(r["step"]) for r in steps] == [1, 2, 3, 4]
    assert all(float(r["samples_per_s"]) > 0 and float(r["lr"]) >= 0 for r in steps) and float(steps[0]["lr"]) > 0
    assert [int(r["step"]) for r in vals] == [2, 4]
    assert all(float(r["val_psnr_noise"]) == pytest.approx(float(r["val_psnr"])) for r in vals)  # one task here
    assert all(r["val_psnr_rain"] == "" for r in vals)


def events_of(run: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_time_limit_stops_with_a_checkpoint(tmp_path: Path):
    data = make_train_data(tmp_path / "data")
    result = T.train(tiny_config(data, tmp_path / "out", steps=50, ckpt_every=1000, time_limit_s=0.0))
    assert result.step == 1 and result.checkpoint is not None and result.checkpoint.name == "step-00000001.pt"
    assert [e["event"] for e in events_of(result.run)][-2:] == ["time_limit", "done"]


def test_checkpoints_by_seconds(tmp_path: Path):
    data = make_train_data(tmp_path / "data")
    cfg = tiny_config(data, tmp_path / "out", steps=3, ckpt_every=1000, ckpt_every_s=0.0, keep_checkpoints=5)
    result = T.train(cfg)
    assert [p.name for p in T.list_checkpoints(result.run / "checkpoints")] == [
        "step-00000003.pt", "step-00000002.pt", "step-00000001.pt"]


def test_planning_fewer_steps_ends_the_cosine_at_the_new_end(tmp_path: Path):
    trainer = first_steps(tmp_path, steps=100, schedule={"name": "cosine", "warmup_steps": 1, "min_lr": 1e-6})
    assert trainer.step == 2
    trainer._fit_to_time(steps_per_s=10.0, seconds_left=1.0)  # 9 more steps fit (92 % of the time)
    assert trainer.planned_steps == 11
    lrs = []
    for _ in range(9):
        trainer.optimizer.step()
        trainer.scheduler.step()
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
    assert lrs[-1] == pytest.approx(1e-6) and lrs == sorted(lrs, reverse=True)
    assert trainer.state()["planned_steps"] == 11


def test_fit_to_time_never_plans_more_than_train_steps(tmp_path: Path):
    trainer = first_steps(tmp_path, steps=20)
    trainer._fit_to_time(steps_per_s=1000.0, seconds_left=60.0)
    assert trainer.planned_steps == 20


def test_a_faster_machine_later_extends_the_plan_again(tmp_path: Path):
    trainer = first_steps(tmp_path, steps=100)
    trainer._fit_to_time(steps_per_s=10.0, seconds_left=1.0)
    assert trainer.planned_steps == 11
    trainer._fit_to_time(steps_per_s=10.0, seconds_left=5.0)  # the load went away: 46 more steps fit
    assert trainer.planned_steps == 48


def test_a_pause_between_plans_is_not_taken_for_the_machines_speed():
    """95 steps of 3 s, a validation step of 15 s and one step that spans a 15-minute pause
    (SIGSTOP, a sleeping laptop): the plan's speed is the machine's, not the wall clock's."""
    steps = [3.0] * 98 + [15.0, 903.0]
    assert T.steady_rate(steps) == pytest.approx(100 / (98 * 3 + 15 + 15))  # the pause counts as 5 median steps
    assert T.steady_rate(steps) > 0.3 > 100 / sum(steps)  # the wall clock's mean said 0.08 steps/s
    assert T.steady_rate([3.0] * 20) == pytest.approx(1 / 3)
