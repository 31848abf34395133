"""``airtool train``: a plain PyTorch loop for every registered model.

Per step: ``model.forward_train(degraded, clean, task)`` -> L1 (+ FFT-L1) + the
model's aux losses; backward (AMP optional); gradient clipping; optimiser step; LR schedule
step; ``model.after_step(step)``; EMA update. Validation on held-out training images, JSONL
log and atomic checkpoints live in the run folder ``<output_dir>/<name>/``:

    config.yaml          resolved config (the source of truth on --resume)
    command.txt          the command line that started the run
    log.jsonl            one JSON object per logged step / validation / checkpoint
    checkpoints/step-00001000.pt   model, EMA, optimiser, scheduler, step, RNG states

Scale out: launched by ``torchrun`` (WORLD_SIZE > 1) it runs DDP, one process per GPU; the
data stream is sharded by ``DistributedSampler`` (see ``airtool.engine.training.data``).

This module holds the ``Trainer`` loop and ``train()``; its parts live beside it in
``airtool.engine.training``: ``config`` (config dataclasses, presets), ``distributed`` (rank, device,
hardware line), ``precision`` (training precision, channels-last), ``optim`` (optimiser, LR schedule,
EMA), ``checkpoints`` (RNG states, checkpoint files), ``run_folder`` (config.yaml, command.txt,
log.jsonl, metrics.csv) and ``export`` (weights file and manifest entry). Every name they took
from this module is still importable from here.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from airtool.engine.hardware.allocator import tune_malloc
from airtool.engine.training.checkpoints import (
    CHECKPOINT_GLOB,  # noqa: F401 (re-exported)
    list_checkpoints,
    load_checkpoint,
    load_latest_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from airtool.engine.training.config import (
    LoopConfig,
    ModelConfig,
    OptimConfig,
    ScheduleConfig,
    TrainConfig,
    load_train_config,
    preset_names,
)
from airtool.engine.training.cpu_ranks import per_rank_config
from airtool.engine.training.data import build_train_loader, build_val_samples
from airtool.engine.training.distributed import (
    Dist,
    end_distributed,
    from_main,
    hardware,
    init_distributed,
    select_device,
)
from airtool.engine.training.export import ExportResult, export_run
from airtool.engine.training.graceful_stop import stop_between_steps
from airtool.engine.training.losses import total_loss
from airtool.engine.training.optim import Ema, build_optimizer, build_scheduler, optimizer_impl
from airtool.engine.training.precision import autocast, train_precision, use_channels_last
from airtool.engine.training.run_folder import (
    METRICS_COLUMNS,  # noqa: F401 (re-exported)
    METRICS_CSV,
    Event,
    append_jsonl,
    append_metrics_csv,
    load_run_config,
    prepare_run,
    resolve_run,
)
from airtool.models import get_spec
from airtool.tasks import TASKS

EventSink = Callable[[Event], None]


CLIP_HOW = "set model.clip: PATH in the config or --set model.clip=PATH"


def _clip_path(cfg: ModelConfig) -> Path | None:
    """Where a model that reads CLIP features gets its encoder; fails in one line when nowhere."""
    if not get_spec(cfg.name).needs_clip:
        return None
    from airtool.models.clip_encoder import resolve_clip_path

    return resolve_clip_path(cfg.clip, cfg.name, CLIP_HOW)


def _attach_clip(model: nn.Module, cfg: ModelConfig) -> None:
    path = _clip_path(cfg)
    if path is not None:
        from airtool.models.clip_encoder import load_clip_encoder

        model.attach_clip(load_clip_encoder(path))


def _warm_start(model: nn.Module, cfg: ModelConfig) -> dict[str, Any] | None:
    if cfg.init is None:
        return None
    from airtool.engine.training.warm_start import load_init_weights

    return load_init_weights(model, cfg.name, cfg.init)


# -- the loop --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainResult:
    run: Path
    step: int
    loss: float | None
    val: dict[str, float] | None
    checkpoint: Path | None
    wall_time_s: float
    resumed_from: Path | None
    rank: int = 0  # under torchrun, only rank 0 writes the run folder
    stopped_by: int | None = None  # the signal (SIGINT, SIGTERM) that ended the run early


class _TrainForward(nn.Module):
    """Makes ``forward_train`` the module's ``forward``, so DDP synchronises its gradients."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, degraded: Tensor, clean: Tensor, task: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return self.model.forward_train(degraded, clean, task)


def _input_baseline(samples: list) -> dict[str, float]:
    """PSNR/SSIM of the degraded held-out inputs themselves, the floor validation should beat."""
    from airtool.metrics import METRIC_SPECS, score

    if not samples:
        return {}
    scores = [score(d.numpy().transpose(1, 2, 0), c.numpy().transpose(1, 2, 0), METRIC_SPECS["promptir"])
              for d, c, _ in samples]
    return {"val_input_psnr": float(np.mean([min(p, 100.0) for p, _ in scores])),
            "val_input_ssim": float(np.mean([q for _, q in scores]))}


FIT_SKIP, FIT_WINDOW = 5, 20  # steps not timed, then steps timed, by ``fit_to_time``
FIT_MARGIN = 0.92  # share of the remaining time planned for steps (the rest: validation, checkpoints)
FIT_OUTLIER = 5.0  # a step counts for at most this many times the median step in the speed


def steady_rate(seconds: list[float]) -> float:
    """Steps per second from each step's seconds, each counted as at most ``FIT_OUTLIER`` times
    their median: a pause (a job stopped and continued, a machine asleep) is not taken for the
    machine's speed, which would plan the run, and its cosine, to end far too soon; the steps
    that also validate or checkpoint, a few steps long, still count in full."""
    cap = FIT_OUTLIER * float(np.median(seconds))
    return len(seconds) / max(sum(min(sec, cap) for sec in seconds), 1e-9)


def _plain_strides_for_pointwise_kernels(model: nn.Module) -> None:
    """A 1x1 kernel's memory order is the same in either layout, but channels-last gives it
    strides that the gradients autograd makes for it do not have, so DDP warned and copied each
    such gradient into its bucket every step. Plain strides for those kernels (still channels-last
    contiguous: the strides of size-1 dimensions do not count)."""
    for param in model.parameters():
        if param.dim() == 4 and param.shape[-2:] == (1, 1):
            param.data = param.data.clone(memory_format=torch.contiguous_format)


def _fast_forward(scheduler: Any, steps: int) -> None:
    """Bring a new schedule to ``steps`` (no optimiser step has run yet: torch would warn)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
        for _ in range(steps):
            scheduler.step()


class Trainer:
    """Owns the model, optimiser, schedule, EMA and run folder of one training run (one rank)."""

    def __init__(
        self, cfg: TrainConfig, run: Path, dist: Dist, on_event: EventSink | None, warm_start: bool = True,
    ) -> None:
        self.run, self.dist, self.on_event = run, dist, on_event
        self.malloc = tune_malloc()  # freed activations stay in the process for the next step
        self.device = select_device(cfg.train.device)
        self.cfg = cfg = per_rank_config(cfg, dist.world, self.device.type)  # CPU ranks share the batch
        spec = get_spec(cfg.model.name)
        self.precision = train_precision(cfg.train, spec, self.device)
        self.channels_last = use_channels_last(cfg.train, self.device)
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        seed_everything(cfg.seed)  # identical initial weights on every rank
        self.model = spec.create(cfg.model.variant)
        # A resumed run takes its weights from the checkpoint, so its starting file need not exist any more.
        self.init_info = _warm_start(self.model, cfg.model) if warm_start else None
        _attach_clip(self.model, cfg.model)  # frozen, outside parameters(): not in the optimiser or EMA
        self.model = self.model.to(self.device).train()
        self.model.to(memory_format=self.memory_format)
        _plain_strides_for_pointwise_kernels(self.model)
        self.optimizer = build_optimizer(cfg.train.optim, self.model.parameters(), self.device)
        self.scheduler = build_scheduler(cfg.train.schedule, self.optimizer, cfg.train.steps)
        self.ema = Ema(self.model, cfg.train.ema_decay, cfg.train.ema_warmup)
        fp16 = self.precision == "fp16"
        self.scaler = torch.amp.GradScaler("cuda") if fp16 else None
        self.net: nn.Module = _TrainForward(self.model)
        if dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # gradient_as_bucket_view: gradients live in DDP's buckets, with the channels-last
            # strides of their parameters, instead of being copied into them every step.
            self.net = nn.parallel.DistributedDataParallel(
                self.net, device_ids=ids, find_unused_parameters=self.model.sparse_gradients,
                gradient_as_bucket_view=True,
            )
        if cfg.train.compile:
            # Every training batch has the same shape, so static shapes: with torch.compile's
            # automatic dynamic shapes, inductor failed on DaAIR's routed sub-batches (torch 2.13).
            self.net = torch.compile(self.net, dynamic=False)
        self.step, self.wall, self.cpu_s, self.last_val = 0, 0.0, 0.0, None
        self.start_step = 0
        self.stop_at: float | None = None  # a wall-clock deadline (time.time()), set by train()
        if self.init_info is not None and cfg.train.start_step:
            self.start_step = self.step = cfg.train.start_step  # a campaign continued from its weights
            _fast_forward(self.scheduler, self.step)
        self.planned_steps = cfg.train.steps  # fewer once fit_to_time has timed the first steps
        self.hardware = hardware(self.device, dist.world)
        seed_everything(cfg.seed + dist.rank)

    def state(self) -> dict[str, Any]:
        return {
            "format": 1, "step": self.step, "model": self.model.state_dict(), "ema": self.ema.state,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None, "rng": rng_state(),
            "wall_time_s": self.wall, "cpu_time_s": self.cpu_s,
            "start_step": self.start_step, "hardware": self.hardware, "val": self.last_val, "clip": self._clip_info(),
            "planned_steps": self.planned_steps, "init": self.init_info,
        }

    def _clip_info(self) -> str | None:
        clip = getattr(self.model, "clip", None)
        return clip.describe() if clip is not None else None

    def restore(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.ema.state = {k: v.to(self.device) for k, v in ckpt["ema"].items()}
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        self.step, self.wall, self.last_val = int(ckpt["step"]), float(ckpt["wall_time_s"]), ckpt.get("val")
        self.cpu_s, self.start_step = float(ckpt.get("cpu_time_s", 0.0)), int(ckpt.get("start_step", 0))
        self.init_info = ckpt.get("init")  # the start the run was made from, not today's file there
        self.planned_steps = min(int(ckpt.get("planned_steps") or self.cfg.train.steps), self.cfg.train.steps)

    def plan_steps(self, steps: int) -> None:
        """End the run at ``steps`` instead: the cosine is rebuilt over that horizon and brought
        to the current step, so the learning rate still reaches its floor at the new end."""
        from dataclasses import replace

        self.planned_steps = max(self.step + 1, min(steps, self.cfg.train.steps))
        schedule = replace(self.cfg.train.schedule, horizon=self.planned_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = group.get("initial_lr", group["lr"])
        self.scheduler = build_scheduler(schedule, self.optimizer, self.planned_steps)
        _fast_forward(self.scheduler, self.step)

    def emit(self, event: Event, log: bool = True) -> None:
        if not self.dist.main:
            return
        if log:
            append_jsonl(self.run / "log.jsonl", event)
            if event.get("event") in ("step", "val"):
                append_metrics_csv(self.run / METRICS_CSV, event)
        if self.on_event is not None:
            self.on_event(event)

    def train_step(self, batch: tuple[Tensor, Tensor, Tensor]) -> dict[str, float]:
        """One optimiser step; returns the loss terms and the gradient norm as floats."""
        degraded, clean, task = (t.to(self.device, non_blocking=True) for t in batch)
        if self.channels_last:
            degraded = degraded.contiguous(memory_format=torch.channels_last)
            clean = clean.contiguous(memory_format=torch.channels_last)
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.precision):
            restored, aux = self.net(degraded, clean, task)
        loss, parts = total_loss(self.cfg.train.loss, restored, clean, aux)
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        clip = self.cfg.train.grad_clip
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), clip if clip else float("inf"))
        self._check_finite(loss, norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        self.model.after_step(self.step)
        self.ema.update(self.model, self.step)
        out = {"loss": loss.item(), "grad_norm": float(norm)}
        out.update({k: v.item() for k, v in parts.items()})
        return out

    def _check_finite(self, loss: Tensor, norm: Tensor) -> None:
        """Stop before a non-finite update reaches the weights: a non-finite loss, or a finite loss
        whose gradients are not (e.g. a square root at 0).

        Checked after the backward pass, so under DDP, where the gradients are then averaged over
        the ranks, a NaN on any rank stops every rank with this reason in the same step. (With
        fp16's scaler an infinite norm is a skipped step, not an error.)
        """
        bad_norm = self.scaler is None and not torch.isfinite(norm)
        if torch.isfinite(loss) and not bad_norm:
            return
        from airtool.errors import AirtoolError

        raise AirtoolError(
            f"loss is {loss.item()}, gradient norm {float(norm)} at step {self.step + 1}; "
            "lower train.optim.lr or use train.precision=fp32"
        )

    @torch.no_grad()
    def validate(self, samples: list, eval_model: nn.Module) -> dict[str, float]:
        """Mean PSNR/SSIM of the EMA weights on the held-out samples (promptir metrics)."""
        from airtool.metrics import METRIC_SPECS, score

        eval_model.load_state_dict(self.ema.state)
        eval_model.eval()
        results, by_task = [], {}
        for degraded, clean, label in samples:
            with autocast(self.device, self.precision):
                out = eval_model(degraded[None].to(self.device))
            pred = out[0].float().cpu().numpy().transpose(1, 2, 0)
            result = score(pred, clean.numpy().transpose(1, 2, 0), METRIC_SPECS["promptir"])
            results.append(result)
            by_task.setdefault(TASKS[int(label)], []).append(min(result[0], 100.0))
        psnr = float(np.mean([min(r[0], 100.0) for r in results]))
        per_task = {f"val_psnr_{task}": float(np.mean(values)) for task, values in by_task.items()}
        return {"val_psnr": psnr, "val_ssim": float(np.mean([r[1] for r in results])), "val_count": len(results),
                **per_task}

    def _fit_to_time(self, steps_per_s: float, seconds_left: float) -> None:
        planned = min(self.step + int(max(0.0, seconds_left) * FIT_MARGIN * steps_per_s), self.cfg.train.steps)
        if abs(planned - self.planned_steps) > 0.02 * self.planned_steps:  # re-plan only for a real change
            self.plan_steps(planned)
        self.emit({"event": "plan", "step": self.step, "steps": self.planned_steps,
                   "steps_per_s": steps_per_s, "seconds_left": seconds_left})

    def checkpoint(self) -> Path | None:
        if not self.dist.main:
            return None
        path = save_checkpoint(self.run / "checkpoints", self.state(), self.cfg.train.keep_checkpoints)
        self.emit({"event": "checkpoint", "step": self.step, "path": str(path)})
        return path

    def fit(self) -> TrainResult:
        """Train from ``self.step`` to ``train.steps``; checkpoint every ``ckpt_every`` and at the end."""
        cfg, loop = self.cfg, self.cfg.train
        loader = build_train_loader(
            cfg.data, cfg.seed, start_step=self.step, steps=max(0, loop.steps - self.step),
            rank=self.dist.rank, world=self.dist.world, pin_memory=self.device.type == "cuda",
        )
        samples = build_val_samples(cfg.data, cfg.val, cfg.seed) if self.dist.main and cfg.val.every else []
        shared = {id(m): m for m in self.model.frozen_modules()}  # e.g. SE-SymUNet's CLIP: one copy, not two
        eval_model = copy.deepcopy(self.model, shared) if samples else None
        self.emit({"event": "start", "step": self.step, "steps": loop.steps, "hardware": self.hardware,
                   "precision": self.precision, "channels_last": self.channels_last, "compile": loop.compile,
                   "optimizer_impl": next(iter(optimizer_impl(loop.optim, self.device))),
                   "val_samples": len(samples), **_input_baseline(samples)})
        if eval_model is not None and self.step == self.start_step and self.init_info is not None:
            self.last_val = {"step": self.step, **self.validate(samples, eval_model)}  # where the warm start begins
            self.emit({"event": "val", **self.last_val})
        last_ckpt, stats = None, None
        started, t_step = time.monotonic(), time.monotonic()
        last_ckpt_at, first_step = started, self.step
        fit_secs: list[float] | None = None
        window_start, window_steps = t_step, 0  # samples/s over the steps since the last log line
        per_step = cfg.data.batch_size * self.dist.world
        cpu_at = time.process_time()
        with stop_between_steps(self.dist.world == 1) as stop:
            for batch in loader:
                stats = self.train_step(batch)
                now = time.monotonic()
                self.wall += now - t_step
                self.cpu_s, cpu_at = self.cpu_s + time.process_time() - cpu_at, time.process_time()
                stats.update(step=self.step, lr=self.optimizer.param_groups[0]["lr"], sec=now - t_step)
                t_step, window_steps = now, window_steps + 1
                end = self.step >= self.planned_steps
                logged = self.step % loop.log_every == 0 or end
                if logged:
                    stats["samples_per_s"] = per_step * window_steps / max(now - window_start, 1e-9)
                    window_start, window_steps = now, 0
                self.emit({"event": "step", **stats}, log=logged)
                if loop.fit_to_time and loop.time_limit_s and self.step - first_step == FIT_SKIP:
                    fit_secs = []  # the seconds of each step since the last plan
                elif fit_secs is not None:
                    fit_secs.append(stats["sec"])
                    if self.step - first_step == FIT_SKIP + FIT_WINDOW or self.step % loop.ckpt_every == 0:
                        self._fit_to_time(*from_main([steady_rate(fit_secs), loop.time_limit_s - (now - started)],
                                                     self.dist, self.device))
                        fit_secs, end = [], self.step >= self.planned_steps
                if eval_model is not None and (self.step % cfg.val.every == 0 or end):
                    self.last_val = {"step": self.step, "cpu_time_s": round(self.cpu_s, 1),
                                     **self.validate(samples, eval_model)}
                    self.emit({"event": "val", **self.last_val})
                out_of_time = loop.time_limit_s is not None and time.monotonic() - started >= loop.time_limit_s
                # a deadline on the clock: stop unless one more step and a checkpoint still fit before it
                out_of_time |= self.stop_at is not None and time.time() + 2 * stats["sec"] >= self.stop_at
                if loop.time_limit_s is not None or self.stop_at is not None:  # one decision for every rank
                    out_of_time = bool(from_main([float(out_of_time)], self.dist, self.device)[0])
                due = loop.ckpt_every_s is not None and time.monotonic() - last_ckpt_at >= loop.ckpt_every_s
                stopped = stop.requested  # Ctrl-C or kill: keep the steps run so far
                if self.step % loop.ckpt_every == 0 or end or due or out_of_time or stopped:
                    last_ckpt, last_ckpt_at = self.checkpoint(), time.monotonic()
                if out_of_time and not end:
                    self.emit({"event": "time_limit", "step": self.step, "seconds": time.monotonic() - started})
                if stopped:
                    self.emit({"event": "stopped", "step": self.step, "signal": stop.signal})
                if end or out_of_time or stopped:
                    break
        self.emit({"event": "done", "step": self.step, "seconds": time.monotonic() - started})
        loss = stats["loss"] if stats else None
        return TrainResult(self.run, self.step, loss, self.last_val, last_ckpt, self.wall, None,
                           stopped_by=stop.signal)


def train(
    cfg: TrainConfig, *, run: Path | None = None, resume: bool = False, on_event: EventSink | None = None,
    command: str = "", stop_at: float | None = None,
) -> TrainResult:
    """Train ``cfg`` in ``run`` (default ``<output_dir>/<name>``); ``resume`` continues from the
    newest readable checkpoint there, falling back to the previous one if the newest is damaged.
    ``stop_at`` (a ``time.time()`` value) ends the run with a checkpoint before that moment.

    Raises ``ConfigError`` for a bad config or a run folder that already has checkpoints
    (without ``resume``), ``WeightsError`` when no checkpoint of a resumed run can be read.
    """
    from airtool.io.atomic import remove_stale_temps

    run = Path(run) if run is not None else Path(cfg.output_dir) / cfg.name
    _clip_path(cfg.model)  # before the run folder is made: a missing CLIP path is one line
    dist = init_distributed()
    if dist.main:
        prepare_run(cfg, run, resume, command)
        remove_stale_temps(run / "checkpoints")  # a checkpoint write cut short by a killed run
    trainer = Trainer(cfg, run, dist, on_event, warm_start=not resume)
    trainer.stop_at = stop_at
    resumed_from = None
    if resume:
        ckpt, resumed_from, skipped = load_latest_checkpoint(run / "checkpoints")
        for line in skipped:
            trainer.emit({"event": "checkpoint_skipped", "reason": line})
        trainer.restore(ckpt)
        trainer.emit({"event": "resume", "step": trainer.step, "path": str(resumed_from)})
    try:
        result = trainer.fit()
    finally:
        end_distributed(dist)
    return TrainResult(result.run, result.step, result.loss, result.val, result.checkpoint,
                       result.wall_time_s, resumed_from, dist.rank, result.stopped_by)


__all__ = [
    "TrainConfig", "ModelConfig", "LoopConfig", "OptimConfig", "ScheduleConfig", "TrainResult", "ExportResult",
    "load_train_config", "preset_names", "resolve_run", "load_run_config", "train", "export_run",
    "save_checkpoint", "load_checkpoint", "load_latest_checkpoint", "list_checkpoints",
]
