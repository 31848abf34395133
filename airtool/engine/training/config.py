"""The training configuration: the dataclasses a ``train`` YAML maps onto, the shipped presets
(``airtool/configs/train``) and ``load_train_config``, which reads either with ``--set`` overrides.

A preset (or any training YAML) may start from another with ``base: NAME`` (a shipped preset) or
``base: FILE.yaml`` (relative to its own folder) and give only the keys that differ: mappings merge
key by key, lists (``data.sources``) and scalars replace, ``null`` included. The base's ``name`` is
inherited like any other key, so a file gives its own. ``--set`` overrides apply last; the config
saved in a run folder is the resolved one, without ``base:``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from airtool.config import build, merge_trees, read_yaml
from airtool.engine.training.data import DataConfig, ValConfig
from airtool.engine.training.losses import LossConfig
from airtool.errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    name: str
    variant: str | None = None  # None: the model's default variant
    clip: str | None = None  # se-symunet: local CLIP ViT-L/14 folder (default: $AIRTOOL_CLIP)
    init: str | None = None  # warm start: an exported weights file to begin from (engine/training/warm_start.py)


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
    RETIRED_KEYS: ClassVar[Mapping[str, str]] = {"amp": "use train.precision: fp32|bf16|fp16"}

    steps: int
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    grad_clip: float | None = None  # max L2 norm of all gradients
    ema_decay: float = 0.999
    ema_warmup: bool = True  # decay min(d, (1+step)/(10+step)): short runs get a usable EMA
    # fp32, bf16 or fp16 autocast (the words of ``restore --precision``); auto = the choice for
    # this device and model (engine/hardware/precision.py).
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool | None = None  # None = auto: on for CPU training, where it measured faster
    compile: bool = False  # torch.compile the training forward (compile time is paid per run)
    # CPU: the step's batch shared by this many one-thread DDP ranks that ``airtool train``
    # starts under torchrun; auto = one per torch thread (engine/training/cpu_ranks.py). 1 (one process)
    # by default: with the tuned allocator it measured no faster (docs/performance.md#training).
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


YAML_SUFFIXES = (".yaml", ".yml")
BASE_KEY = "base"


def load_train_config(source: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """A preset name (``symunet-aio3``) or a YAML file, its ``base:`` chain resolved, plus ``--set``
    overrides, validated."""
    path = Path(source)
    with ExitStack() as stack:
        if not (str(source).endswith(YAML_SUFFIXES) or path.is_file()):
            if str(source) not in preset_names():
                raise ConfigError(f"unknown training config {str(source)!r}; presets: {', '.join(preset_names())}")
            path = _preset_file(str(source), stack)
        return build(TrainConfig, _resolved_tree(path, stack), path, overrides)


def _preset_file(name: str, stack: ExitStack) -> Path:
    return stack.enter_context(resources.as_file(resources.files("airtool.configs") / "train" / f"{name}.yaml"))


def _resolved_tree(file: Path, stack: ExitStack, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The YAML data of ``file`` on top of its ``base:`` (recursively), without the ``base`` key."""
    data = read_yaml(file)
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{file}: expected a mapping, got {type(data).__name__} {data!r}")
    if BASE_KEY not in data:
        return dict(data)
    chain = (*chain, file.resolve())
    base = _base_file(file, data[BASE_KEY], stack)
    if base.resolve() in chain:
        loop = " -> ".join(p.name for p in (*chain[chain.index(base.resolve()):], base.resolve()))
        raise ConfigError(f"{file}: base cycle: {loop}")
    own = {key: value for key, value in data.items() if key != BASE_KEY}
    return merge_trees(_resolved_tree(base, stack, chain), own)


def _base_file(file: Path, base: Any, stack: ExitStack) -> Path:
    """The file that ``base: NAME`` (a shipped preset) or ``base: FILE.yaml`` in ``file`` names."""
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{file}: base: expected a preset name or a YAML file, got {type(base).__name__} {base!r}")
    if base.endswith(YAML_SUFFIXES):
        path = file.parent / base
        if not path.is_file():
            raise ConfigError(f"{file}: base {base!r}: no such file ({path})")
        return path
    if base not in preset_names():
        raise ConfigError(f"{file}: base {base!r} is not a shipped preset; presets: {', '.join(preset_names())}")
    return _preset_file(base, stack)
