"""The training campaign: one schedule across sessions, exact resume, a clean stop at a deadline
or a signal, and the same schedule continued from exported weights when runs/ is gone."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from airtool import api
from airtool.config import to_yaml
from airtool.engine.training import train as T
from airtool.engine.training.campaign import plan_campaign, shipped_step
from airtool.engine.training.optim import build_scheduler, cosine_factor
from airtool.models.weights import read_state_dict
from tests.engine.training.test_train import make_train_data, tiny_config

STEPS = 6


@pytest.fixture()
def preset(tmp_path: Path) -> Path:
    """A tiny campaign preset: 6-step cosine with a 2-step ramp for a fresh optimiser."""
    cfg = tiny_config(make_train_data(tmp_path / "data"), tmp_path / "runs", steps=STEPS, ckpt_every=2,
                      schedule={"warmup_steps": 1, "min_lr": 1e-5, "rewarm_steps": 2})
    path = tmp_path / "campaign.yaml"
    path.write_text(to_yaml(cfg))
    return path


def events_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def step_rows(run: Path) -> dict[int, tuple[float, float]]:
    return {e["step"]: (e["loss"], e["lr"]) for e in events_of(run) if e["event"] == "step"}


def test_the_closed_form_cosine_is_torchs_warmup_and_cosine():
    """Without a ramp, the campaign's schedule is the one every other preset gets, up to its
    horizon (after it, torch's cosine rises again; the closed form stays at the floor)."""
    cfg = T.ScheduleConfig(warmup_steps=3, min_lr=1e-5)
    opt_a = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    opt_b = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    torch_schedule = build_scheduler(cfg, opt_a, 20)
    closed = build_scheduler(replace(cfg, rewarm_steps=5), opt_b, 20)  # no rewarm_at: no ramp
    assert isinstance(closed, torch.optim.lr_scheduler.LambdaLR)
    for _ in range(21):
        assert opt_b.param_groups[0]["lr"] == pytest.approx(opt_a.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
        opt_a.step(), opt_b.step()
        torch_schedule.step(), closed.step()
    assert cosine_factor(cfg, 20, 1e-3, 40) == pytest.approx(1e-5 / 1e-3)


def test_the_ramp_scales_the_cosine_from_the_rewarm_step_only():
    cfg = T.ScheduleConfig(warmup_steps=0, min_lr=0.0, rewarm_at=10, rewarm_steps=4)
    plain = replace(cfg, rewarm_at=None)
    assert cosine_factor(cfg, 100, 1e-3, 9) == cosine_factor(plain, 100, 1e-3, 9)
    assert cosine_factor(cfg, 100, 1e-3, 10) == pytest.approx(cosine_factor(plain, 100, 1e-3, 10) / 4)
    assert cosine_factor(cfg, 100, 1e-3, 13) == pytest.approx(cosine_factor(plain, 100, 1e-3, 13))
    assert cosine_factor(cfg, 100, 1e-3, 50) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


class Stop(Exception):
    pass


def stop_after_checkpoint(step: int):
    def on_event(event: dict) -> None:
        if event["event"] == "checkpoint" and event["step"] == step:
            raise Stop  # as if the machine went away right after that checkpoint
    return on_event


def reference_and_interrupted(preset: Path, tmp_path: Path) -> Path:
    """A whole reference run in tmp_path/reference, and tmp_path/campaign stopped after step 2."""
    api.campaign(preset=str(preset), run=tmp_path / "reference", weights=tmp_path / "none.safetensors")
    run = tmp_path / "campaign"
    with pytest.raises(Stop):
        api.campaign(preset=str(preset), run=run, weights=tmp_path / "none.safetensors",
                     on_event=stop_after_checkpoint(2))
    return run


def test_an_interrupted_campaign_resumes_exactly(preset: Path, tmp_path: Path):
    run = reference_and_interrupted(preset, tmp_path)
    result = api.campaign(preset=str(preset), run=run, weights=tmp_path / "none.safetensors")
    assert result.step == STEPS and result.resumed_from.name == "step-00000002.pt"
    expected, resumed = step_rows(tmp_path / "reference"), step_rows(run)
    for step in range(3, STEPS + 1):
        assert resumed[step][0] == pytest.approx(expected[step][0], rel=1e-6, abs=1e-7)
        assert resumed[step][1] == pytest.approx(expected[step][1], rel=1e-12)
    final = T.load_checkpoint(run / "checkpoints" / f"step-{STEPS:08d}.pt")["model"]
    reference = T.load_checkpoint(tmp_path / "reference" / "checkpoints" / f"step-{STEPS:08d}.pt")["model"]
    for key, value in reference.items():
        torch.testing.assert_close(final[key], value, rtol=1e-5, atol=1e-6)


def test_a_deadline_stops_cleanly_with_a_checkpoint(preset: Path, tmp_path: Path):
    run = tmp_path / "campaign"
    result = api.campaign(preset=str(preset), run=run, weights=tmp_path / "none.safetensors",
                          stop_at=time.time() - 1)  # already past: one step, then stop
    assert result.step == 1 and result.stopped_by is None
    assert result.checkpoint is not None and result.checkpoint.name == "step-00000001.pt"
    assert [e["event"] for e in events_of(run)][-2:] == ["time_limit", "done"]
    assert api.campaign(preset=str(preset), run=run, weights=tmp_path / "none.safetensors").step == STEPS


def test_sigterm_stops_between_steps_with_a_checkpoint(preset: Path, tmp_path: Path):
    def kill_at_step_3(event: dict) -> None:
        if event["event"] == "step" and event["step"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    run = tmp_path / "campaign"
    result = api.campaign(preset=str(preset), run=run, weights=tmp_path / "none.safetensors", on_event=kill_at_step_3)
    assert result.stopped_by == signal.SIGTERM and result.step == 3
    assert result.checkpoint.name == "step-00000003.pt"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored after the run


def exported_at(step: int, preset: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A campaign run stopped after its checkpoint at ``step``, and that checkpoint exported with
    a manifest entry, as a session ships its weights."""
    first = tmp_path / "first"
    with pytest.raises(Stop):
        api.campaign(preset=str(preset), run=first, weights=tmp_path / "none.safetensors",
                     on_event=stop_after_checkpoint(step))
    weights = tmp_path / "weights" / "symunet-tiny.safetensors"
    api.export(first, weights, dtype="fp32", manifest=weights.parent / "manifest.json")
    return first, weights


def test_a_lost_run_folder_continues_the_exported_weights_on_the_same_schedule(preset: Path, tmp_path: Path):
    first, weights = exported_at(4, preset, tmp_path)
    assert shipped_step(weights) == 4
    plan = plan_campaign(str(preset), run=tmp_path / "lost", weights=weights)
    assert not plan.resume and plan.cfg.train.start_step == 4 and plan.cfg.model.init == str(weights)
    result = api.campaign(preset=str(preset), run=tmp_path / "lost", weights=weights)
    assert result.step == STEPS
    rows, reference = step_rows(tmp_path / "lost"), step_rows(first)
    assert sorted(rows) == [5, 6]  # the step count goes on from the file's step
    cfg = plan.cfg.train.schedule
    for step in (5, 6):  # the same cosine, ramped in for the fresh optimiser (rewarm_steps 2)
        plain = cosine_factor(replace(cfg, rewarm_at=None), STEPS, 1e-3, step)  # logged: the next step's lr
        assert rows[step][1] == pytest.approx(1e-3 * plain * min(1.0, (step - 4 + 1) / 2), rel=1e-9)
    assert reference[4][1] == pytest.approx(1e-3 * cosine_factor(replace(cfg, rewarm_at=None), STEPS, 1e-3, 4))
    entry = json.loads((weights.parent / "manifest.json").read_text())["files"][weights.name]
    assert entry["steps"] == 4 and entry["run_steps"] == 4 and entry["core_hours"] is not None
    assert T.load_checkpoint(first / "checkpoints" / "step-00000004.pt")["cpu_time_s"] > 0
    api.export(tmp_path / "lost", weights, dtype="fp32", manifest=weights.parent / "manifest.json")
    entry = json.loads((weights.parent / "manifest.json").read_text())["files"][weights.name]
    assert (entry["steps"], entry["run_steps"], entry["total_steps"]) == (6, 2, 6)
    assert read_state_dict(weights)[1]["airtool_steps"] == "6"


def test_a_run_resumes_after_its_starting_file_is_gone(preset: Path, tmp_path: Path):
    _, weights = exported_at(2, preset, tmp_path)
    run = tmp_path / "from-file"
    with pytest.raises(Stop):
        api.campaign(preset=str(preset), run=run, weights=weights, on_event=stop_after_checkpoint(4))
    weights.unlink()  # a candidate folder cleaned away: the checkpoint has everything
    result = api.campaign(preset=str(preset), run=run, weights=weights)
    assert result.step == STEPS and result.resumed_from.name == "step-00000004.pt"


def test_a_resumed_campaign_takes_its_data_sources_from_the_preset(preset: Path, tmp_path: Path):
    run = reference_and_interrupted(preset, tmp_path)
    assert "follow" not in plan_campaign(str(preset), run=run).how  # an unchanged preset: an exact resume
    preset.write_text(preset.read_text().replace("- 25.0", "- 50.0"))  # the mix changes: sigma 25 -> 50
    plan = plan_campaign(str(preset), run=run)
    assert plan.resume and "data sources now follow" in plan.how
    assert plan.cfg.data.sources[0].sigmas == (50.0,)
    events: list[dict] = []
    result = api.campaign(preset=str(preset), run=run, weights=tmp_path / "none.safetensors", on_event=events.append)
    assert result.step == STEPS and result.resumed_from.name == "step-00000002.pt"
    assert any(e["event"] == "campaign" and "follow" in e["how"] for e in events)
    assert "- 50.0" in (run / "config.yaml").read_text()  # the run records the mix it now trains on
    expected, resumed = step_rows(tmp_path / "reference"), step_rows(run)
    for step in range(3, STEPS + 1):
        assert resumed[step][1] == pytest.approx(expected[step][1], rel=1e-12)  # the same schedule
    assert resumed[3][0] > expected[3][0] * 1.2  # on noisier inputs: the new data reached training
