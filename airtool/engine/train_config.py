"""The training configuration: the dataclasses a ``train`` YAML maps onto, the shipped presets
(``airtool/configs/train``) and ``load_train_config``, which reads either with ``--set`` overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from airtool.config import load_yaml
from airtool.engine.data import DataConfig, ValConfig
from airtool.engine.losses import LossConfig
from airtool.errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    name: str
    variant: str | None = None  # None: the model's default variant
    clip: str | None = None  # se-symunet: local CLIP ViT-L/14 folder (default: $AIRTOOL_CLIP)
    init: str | None = None  # warm start: an exported weights file to begin from (engine/warm_start.py)


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["adam", "adamw"] = "adamw"
    lr: float = 2e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    # PyTorch's implementations of the same update: for-loop, foreach (multi-tensor) or fused
    # (one kernel); auto = fused where this torch has it for the device, else foreach.
    impl: Literal["auto", "for-loop", "foreach", "fused"] = "auto"


@dataclass(frozen=True)
class ScheduleConfig:
    name: Literal["cosine", "multistep", "constant"] = "cosine"
    warmup_steps: int = 0  # linear warm-up from lr·warmup_start_factor
    warmup_start_factor: float = 0.001
    horizon: int | None = None  # steps the cosine spans (incl. warm-up); default train.steps
    min_lr: float = 0.0  # cosine floor (eta_min)
    milestones: tuple[int, ...] = ()  # multistep
    gamma: float = 0.5  # multistep
    # A fresh optimiser joining a schedule midway (a campaign continued from exported weights,
    # whose Adam moments were not kept): the cosine's learning rate is ramped in linearly over
    # ``rewarm_steps`` steps from step ``rewarm_at``, so the first updates, taken with empty
    # second moments, are not full-size. The schedule itself is unchanged. With rewarm_steps > 0
    # the cosine is computed in closed form (optim.cosine_factor), whether or not it ramps.
    rewarm_at: int | None = None
    rewarm_steps: int = 0


@dataclass(frozen=True)
class LoopConfig:
    steps: int
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    grad_clip: float | None = None  # max L2 norm of all gradients
    ema_decay: float = 0.999
    ema_warmup: bool = True  # decay min(d, (1+step)/(10+step)): short runs get a usable EMA
    # fp32, bf16 or fp16 autocast (the words of ``restore --precision``); auto = the fastest safe
    # one for this device and model (see ``train_precision``). ``amp`` is the old name of the
    # same setting, kept so that existing configs still work: ``amp: none`` means fp32.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    amp: Literal["none", "fp32", "bf16", "fp16"] | None = None
    channels_last: bool | None = None  # None = auto: on for CPU training, where it measured faster
    compile: bool = False  # torch.compile the training forward (compile time is paid per run)
    # CPU: the step's batch shared by this many one-thread DDP ranks that ``airtool train``
    # starts under torchrun; auto = one per torch thread (engine/cpu_ranks.py). 1 (one process)
    # by default: with the tuned allocator it measured no faster (README, Training speed).
    cpu_ranks: int | Literal["auto"] = 1
    device: str = "auto"
    log_every: int = 100
    ckpt_every: int = 1000
    ckpt_every_s: float | None = None  # also checkpoint when this many seconds passed since the last one
    time_limit_s: float | None = None  # stop (with a checkpoint) once training has run this long
    # With time_limit_s: time the FIT_WINDOW steps after the first FIT_SKIP (compilation, warm-up)
    # and plan the run's end (and the cosine's horizon) so that it ends within the time limit;
    # re-planned at every checkpoint from the speed since the last plan, for a machine whose load
    # changes. Never beyond train.steps.
    fit_to_time: bool = False
    keep_checkpoints: int = 2
    # A warm start (model.init) that continues a longer schedule: the run begins at this step of
    # the schedule and of the data stream instead of 0 (``airtool train campaign``).
    start_step: int = 0


@dataclass(frozen=True)
class TrainConfig:
    name: str
    model: ModelConfig
    data: DataConfig
    train: LoopConfig
    val: ValConfig = field(default_factory=ValConfig)
    setting: str = "aio3"  # aio3 / aio5 / custom: the row of the weights manifest
    seed: int = 0
    output_dir: str = "runs"
    notes: str = ""


def preset_names() -> list[str]:
    """Names of the training presets shipped in ``airtool/configs/train``."""
    folder = resources.files("airtool.configs") / "train"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_train_config(source: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """A preset name (``symunet-aio3``) or a YAML file, plus ``--set`` overrides, validated."""
    path = Path(source)
    if str(source).endswith((".yaml", ".yml")) or path.is_file():
        return load_yaml(path, TrainConfig, overrides)
    if str(source) not in preset_names():
        raise ConfigError(f"unknown training config {str(source)!r}; presets: {', '.join(preset_names())}")
    with resources.as_file(resources.files("airtool.configs") / "train" / f"{source}.yaml") as file:
        return load_yaml(file, TrainConfig, overrides)
