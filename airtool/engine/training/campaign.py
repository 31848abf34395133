"""The training campaign: one run with one learning-rate schedule, advanced a few hours at a
time by whoever has compute, instead of a new warm-started schedule per session.

``airtool train campaign`` decides how to go on, in this order:

1. the campaign's run folder has a readable checkpoint: resume it exactly (weights, optimiser,
   EMA, step, data stream and RNG states, the schedule of its config.yaml). Only the data
   sources come from the preset, so that a change to the campaign's data mix reaches every copy
   of the run, resumed or continued from the shipped file alike; each sample is a pure function
   of the seed and its index, so the stream goes on at the same index with the new mix;
2. otherwise (a new machine: ``runs/`` is gone) continue from the shipped weights file, at the
   step its manifest entry records, on the same schedule, with a fresh optimiser whose learning
   rate is ramped in (``schedule.rewarm_steps``) because its moments were not kept;
3. with no weights file either, start the schedule at step 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from airtool.engine.training.checkpoints import list_checkpoints
from airtool.engine.training.config import TrainConfig, load_train_config
from airtool.engine.training.run_folder import load_run_config
from airtool.errors import ConfigError

CAMPAIGN_PRESET = "symunet-campaign"
CAMPAIGN_WEIGHTS = "symunet-aio3.safetensors"  # in the shipped weights folder (models.weights_info.weights_dir)


@dataclass(frozen=True)
class CampaignStart:
    cfg: TrainConfig
    run: Path
    resume: bool
    how: str  # one line for the log: where the campaign goes on from


def shipped_step(weights: Path) -> int:
    """The campaign step a weights file was exported at: its manifest entry's ``steps``, else
    the ``airtool_steps`` metadata of the file itself."""
    from airtool.models.weights import read_manifest, read_state_dict

    entry = read_manifest(weights.parent).get("files", {}).get(weights.name, {})
    steps = entry.get("steps") or read_state_dict(weights)[1].get("airtool_steps")
    if steps is None:
        raise ConfigError(f"{weights}: no step recorded (manifest entry or metadata); cannot place it on the schedule")
    return int(steps)


def plan_campaign(
    preset: str = CAMPAIGN_PRESET, overrides: list[str] | tuple[str, ...] = (), *, run: Path | None = None,
    weights: Path | None = None,
) -> CampaignStart:
    """How the campaign goes on from here (see the module docstring); ``overrides`` apply to a
    new run's preset or to a resumed run's saved config alike."""
    from airtool.models.weights_info import weights_dir

    weights = Path(weights) if weights is not None else weights_dir() / CAMPAIGN_WEIGHTS
    base = load_train_config(preset, list(overrides))
    run = Path(run) if run is not None else Path(base.output_dir) / base.name
    if list_checkpoints(run / "checkpoints"):
        saved = load_run_config(run, list(overrides))
        cfg = replace(saved, data=replace(saved.data, sources=base.data.sources))
        how = f"resuming {run} from its last checkpoint"
        if cfg.data.sources != saved.data.sources:
            how += f"; its data sources now follow {preset}'s, which changed since the run began"
        return CampaignStart(cfg, run, True, how)
    if not weights.is_file():
        return CampaignStart(base, run, False, f"starting {run} at step 0 (no {weights})")
    step = shipped_step(weights)
    if step >= base.train.steps:
        raise ConfigError(f"{weights} is at step {step}, past the campaign's {base.train.steps}; raise train.steps")
    cfg = replace(base, model=replace(base.model, init=str(weights)),
                  train=replace(base.train, start_step=step,
                                schedule=replace(base.train.schedule, rewarm_at=step)))
    return CampaignStart(cfg, run, False, f"continuing {weights} at step {step} of {base.train.steps} "
                                          f"with a fresh optimiser (no checkpoint in {run})")
