"""``api.train`` and ``api.export``: a training run from a preset, a YAML file or a config, and
the weights file made from it. The CLI's ``airtool train`` is a thin layer over these."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from airtool.api.progress import EventSink, Progress
from airtool.errors import UsageError

if TYPE_CHECKING:
    from airtool.engine.training.train import ExportResult, TrainConfig, TrainResult


def train(
    config: str | Path | TrainConfig | None = None, overrides: list[str] | tuple[str, ...] = (), *,
    resume: str | Path | None = None, on_event: EventSink | None = None, progress: bool = False, command: str = "",
) -> TrainResult:
    """Start a run from ``config`` (a preset name, a YAML file or a ``TrainConfig``), or continue
    the run ``resume`` (a folder, or a name under ``runs/``) from its last good checkpoint;
    ``overrides`` are ``key=value`` strings, as ``--set`` takes them. Events: ``start``, ``step``
    (``step`` of ``steps``), ``val``, ``plan``, ``checkpoint``, ``resume``, ``done``."""
    from airtool.engine.training import train as engine

    cfg, run = _resolve(config, overrides, resume)
    with Progress(on_event, progress, f"training {cfg.name}") as sink:
        return engine.train(cfg, run=run, resume=resume is not None, on_event=sink, command=command)


def campaign(
    overrides: list[str] | tuple[str, ...] = (), *, preset: str | None = None, run: str | Path | None = None,
    weights: str | Path | None = None, stop_at: float | None = None, on_event: EventSink | None = None,
    progress: bool = False, command: str = "",
) -> TrainResult:
    """Advance the training campaign (``engine/training/campaign.py``): resume its run, else continue the
    shipped weights at their step on the same schedule; stop with a checkpoint before ``stop_at``
    (a ``time.time()`` value). Emits a ``campaign`` event saying which, then train()'s events."""
    from airtool.engine.training import campaign as engine_campaign
    from airtool.engine.training import train as engine

    plan = engine_campaign.plan_campaign(
        preset or engine_campaign.CAMPAIGN_PRESET, overrides, run=Path(run) if run else None,
        weights=Path(weights) if weights else None,
    )
    with Progress(on_event, progress, f"training {plan.cfg.name}") as sink:
        if sink is not None:
            sink({"event": "campaign", "how": plan.how, "run": str(plan.run), "stop_at": stop_at})
        return engine.train(plan.cfg, run=plan.run, resume=plan.resume, on_event=sink, command=command,
                            stop_at=stop_at)


def cpu_ranks(
    config: str | Path | TrainConfig | None = None, overrides: list[str] | tuple[str, ...] = (), *,
    resume: str | Path | None = None, threads: int | None = None,
) -> int:
    """How many one-thread DDP ranks ``airtool train`` starts for this run (``train.cpu_ranks``,
    ``engine/training/cpu_ranks.py``): 1 when it trains in this process (a GPU, one thread, a rank of a
    torchrun already, or ``cpu_ranks: 1``). ``threads`` defaults to torch's thread count."""
    import torch

    from airtool.engine.hardware.device import resolve_device
    from airtool.engine.training.cpu_ranks import planned_cpu_ranks, under_torchrun

    cfg, _ = _resolve(config, overrides, resume)
    if under_torchrun() or resolve_device(cfg.train.device).type != "cpu":
        return 1
    ranks = planned_cpu_ranks(cfg.train.cpu_ranks, cfg.data.batch_size, threads or torch.get_num_threads())
    return ranks if ranks > 1 and torch.distributed.is_available() else 1


def launch_cpu_ranks(argv: list[str], ranks: int) -> int:
    """Run ``airtool ARGV`` (``train ...``) as ``ranks`` one-thread DDP ranks under torchrun; the
    first failed rank's exit status, or 0 (``engine/training/cpu_ranks.py``)."""
    from airtool.engine.training.cpu_ranks import launch

    return launch(argv, ranks)


def _resolve(
    config: str | Path | TrainConfig | None, overrides: list[str] | tuple[str, ...], resume: str | Path | None,
) -> tuple[TrainConfig, Path | None]:
    from airtool.engine.training import train as engine

    if (config is None) == (resume is None):
        raise UsageError("pass --config NAME|FILE to start a run, or --resume RUN to continue one")
    if resume is not None:
        run = engine.resolve_run(str(resume))
        return engine.load_run_config(run, list(overrides)), run
    if isinstance(config, engine.TrainConfig):
        return config, None
    return engine.load_train_config(str(config), list(overrides)), None


def export(
    run: str | Path, out: str | Path, *, use_ema: bool = True, dtype: str = "bf16",
    manifest: str | Path | bool | None = None, command: str = "",
) -> ExportResult:
    """Write a run's (EMA) weights as safetensors, with their manifest entry in the file's
    metadata and no other file; ``manifest`` also adds the entry to a manifest: a JSON file, a
    folder's manifest.json, or ``True`` for the one beside ``out``."""
    from airtool.engine.training.train import export_run, resolve_run
    from airtool.models.weights_info import MANIFEST_NAME
    from airtool.precision import PRECISIONS

    out = Path(out)
    if out.suffix != ".safetensors":
        raise UsageError(f"--out {out}: the file name must end in .safetensors")
    if dtype not in PRECISIONS:
        raise UsageError(f"--dtype {dtype!r}: use {', '.join(PRECISIONS[1:])} or {PRECISIONS[0]}")
    target = out.parent / MANIFEST_NAME if manifest is True else Path(manifest) if manifest else None
    return export_run(resolve_run(str(run)), out, use_ema=use_ema, command=command, manifest=target, dtype=dtype)


def presets() -> list[tuple[str, TrainConfig]]:
    """The shipped training presets (``airtool train --list-configs``), each with its config."""
    from airtool.engine.training.train import load_train_config, preset_names

    return [(name, load_train_config(name)) for name in preset_names()]
