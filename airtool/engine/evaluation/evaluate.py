"""``airtool evaluate``: score a model on paired folders or benchmark suites, per paper protocol.

The protocols live in ``eval_protocols`` (their table is there), the pairs and how each is read
in ``eval_pairs``; this module runs a model over them and keeps the scores. Inference is
full-image, batch 1, fp32, no tiling (the wrapper pads to the model's size multiple).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from airtool.engine.evaluation.pairs import Pair, find_pairs, iter_inputs
from airtool.engine.evaluation.protocols import (
    PROTOCOLS,
    SUITES,
    EvalProtocol,
    Task,
    parse_task,
)
from airtool.errors import InputError, UsageError
from airtool.metrics import MetricSpec, score_all
from airtool.models.spec import check_precision_name


@dataclass(frozen=True)
class EvalOptions:
    """What ``airtool evaluate`` was asked to do (the CLI maps its options onto this)."""

    model: str
    data: Path | None = None
    weights: str | None = None
    variant: str | None = None
    clip: str | None = None  # se-symunet's CLIP encoder folder (default: $AIRTOOL_CLIP)
    task: str | None = None
    protocol: str = "promptir"
    crop_border: int | None = None
    save_images: Path | None = None
    limit: int | None = None
    device: str = "auto"
    precision: str = "fp32"  # the papers' protocol; bf16 measures what reduced precision costs
    suite: str | None = None
    data_root: Path | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise UsageError(f"--protocol {self.protocol!r}: choose one of {', '.join(PROTOCOLS)}")
        if self.suite is not None and self.suite not in SUITES:
            raise UsageError(f"--suite {self.suite!r}: choose one of {', '.join(SUITES)}")
        if (self.data is None) == (self.suite is None):
            raise UsageError("pass either --data DIR or --suite 3task|5task")
        if self.limit is not None and self.limit < 1:
            raise UsageError("--limit must be at least 1")
        if self.crop_border is not None and self.crop_border < 0:
            raise UsageError("--crop-border must be 0 or more")
        check_precision_name(self.precision, allow_auto=False)
        parse_task(self.task)


@dataclass(frozen=True)
class ImageScore:
    name: str
    psnr: float
    ssim: float
    seconds: float
    others: dict[str, float] = field(default_factory=dict)  # metrics registered beyond PSNR and SSIM


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


@dataclass(frozen=True)
class EvalReport:
    """Per-image scores on one dataset, plus their means."""

    dataset: str
    task: str | None
    protocol: str
    model: str
    rows: tuple[ImageScore, ...]

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def psnr(self) -> float:
        return _mean([r.psnr for r in self.rows])

    @property
    def ssim(self) -> float:
        return _mean([r.ssim for r in self.rows])

    @property
    def seconds_per_image(self) -> float:
        return _mean([r.seconds for r in self.rows])

    def means_of_others(self) -> dict[str, float]:
        """The mean of every metric registered beyond PSNR and SSIM (``airtool.metrics.METRICS``)."""
        names = self.rows[0].others if self.rows else {}
        return {name: _mean([r.others[name] for r in self.rows]) for name in names}

    def summary(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "task": self.task, "protocol": self.protocol, "model": self.model,
                "psnr": self.psnr, "ssim": self.ssim, **self.means_of_others(), "count": self.count,
                "seconds_per_image": self.seconds_per_image}


# -- model -----------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A model behind the same inference path as ``restore`` (layout, precision), untiled."""

    restorer: Any
    name: str

    @property
    def device(self) -> Any:
        return self.restorer.runtime.device

    def __call__(self, img: np.ndarray) -> tuple[np.ndarray, float]:
        """Restore one HWC float image (batch 1, full size): (raw float32 output, seconds)."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
        start = time.perf_counter()
        with torch.inference_mode():
            y = self.restorer.forward_batch(x)  # returns on the host, so a GPU has finished
        seconds = time.perf_counter() - start
        return y[0].numpy().transpose(1, 2, 0), seconds


def load_for_eval(
    name: str, weights: str | None, variant: str | None, device: str = "auto", precision: str = "fp32",
    clip: str | None = None,
) -> LoadedModel:
    """Build a registered model with its weights (strict, safe loading) on ``device``."""
    from airtool.engine.inference.load import load_restorer

    restorer = load_restorer(name, weights, variant=variant, device=device, precision=precision, clip=clip)
    return LoadedModel(restorer, name)


# -- running ---------------------------------------------------------------------------------

OnImage = Callable[[int, int, ImageScore], None]


def _metric_spec(protocol: EvalProtocol, crop_border: int | None) -> MetricSpec:
    if crop_border is None:
        return protocol.metric
    from dataclasses import replace

    return replace(protocol.metric, crop_border=crop_border)


def _save(img: np.ndarray, folder: Path, name: str) -> None:
    from airtool.io.atomic import write_bytes
    from airtool.io.image import Picture, encode_image

    folder.mkdir(parents=True, exist_ok=True)
    pic = Picture(pixels=np.clip(img, 0.0, 1.0).astype(np.float32))
    write_bytes(folder / f"{name}.png", encode_image(pic, "PNG", label=str(folder / f"{name}.png")))


def evaluate_pairs(
    model: LoadedModel, pairs: list[Pair], *, task: Task | None, protocol: EvalProtocol, dataset: str,
    crop_border: int | None = None, save_images: Path | None = None, on_image: OnImage | None = None,
) -> EvalReport:
    """Run ``model`` on every pair and score it; per-image rows in file order."""
    spec = _metric_spec(protocol, crop_border)
    rows = []
    for i, (pair, degraded, target) in enumerate(iter_inputs(pairs, task, protocol)):
        restored, seconds = model(degraded)
        if restored.shape != target.shape:
            raise InputError(pair.target, f"model output {restored.shape} does not match target {target.shape}")
        values = score_all(restored, target, spec)
        others = {name: value for name, value in values.items() if name not in ("psnr", "ssim")}
        row = ImageScore(pair.name, values["psnr"], values["ssim"], seconds, others)
        rows.append(row)
        if save_images is not None:
            _save(restored, save_images, pair.name)
        if on_image is not None:
            on_image(i + 1, len(pairs), row)
    return EvalReport(dataset, task.label if task else None, protocol.name, model.name, tuple(rows))


def evaluate(opts: EvalOptions, on_image: OnImage | None = None, model: LoadedModel | None = None) -> EvalReport:
    """Evaluate ``opts.model`` on the folder ``opts.data`` (``EvalOptions`` documents the rest)."""
    if opts.data is None:
        raise UsageError("evaluate() needs --data; use run_suite() for --suite")
    task = parse_task(opts.task)
    pairs = find_pairs(Path(opts.data), task)[: opts.limit]
    model = model or load_for_eval(opts.model, opts.weights, opts.variant, opts.device, opts.precision, opts.clip)
    return evaluate_pairs(model, pairs, task=task, protocol=PROTOCOLS[opts.protocol], dataset=Path(opts.data).name,
                          crop_border=opts.crop_border, save_images=opts.save_images, on_image=on_image)


# -- benchmark suites ------------------------------------------------------------------------


def data_root(explicit: Path | None = None) -> Path:
    """``--data-root``, else ``$AIRTOOL_DATA``, else ``../shared/data`` from the working directory."""
    root = explicit or Path(os.environ.get("AIRTOOL_DATA") or "../shared/data")
    if not root.is_dir():
        raise UsageError(f"data root {root} not found; pass --data-root DIR or set AIRTOOL_DATA")
    return root


@dataclass(frozen=True)
class SuiteRow:
    dataset: str
    task: str
    report: EvalReport | None = None
    missing: str | None = None  # why the set could not be scored

    def summary(self) -> dict[str, Any]:
        if self.report is None:
            return {"dataset": self.dataset, "task": self.task, "status": "missing", "reason": self.missing}
        return {**self.report.summary(), "status": "ok"}


@dataclass(frozen=True)
class SuiteReport:
    suite: str
    protocol: str
    model: str
    rows: tuple[SuiteRow, ...] = field(default_factory=tuple)

    @property
    def scored(self) -> list[EvalReport]:
        return [r.report for r in self.rows if r.report is not None]

    def summary(self) -> dict[str, Any]:
        """Averages over the scored sets, as the papers' "Avg" column."""
        return {"suite": self.suite, "protocol": self.protocol, "model": self.model,
                "psnr": _mean([r.psnr for r in self.scored]), "ssim": _mean([r.ssim for r in self.scored]),
                "count": len(self.scored), "missing": [f"{r.dataset} {r.task}" for r in self.rows if r.missing]}


def _suite_missing(folder: Path, task: Task) -> str | None:
    if not folder.is_dir():
        return f"{folder} not found"
    paired = (folder / "input").is_dir() and (folder / "target").is_dir()
    if not paired and task.name != "noise":
        return f"{folder} has no input/target pairs (no ground truth available)"
    return None


def run_suite(
    opts: EvalOptions, on_set: Callable[[SuiteRow], None] | None = None, on_image: OnImage | None = None,
) -> SuiteReport:
    """Every set of ``opts.suite`` under the data root; missing sets are rows with a reason."""
    assert opts.suite is not None
    root = data_root(opts.data_root)
    protocol = PROTOCOLS[opts.protocol]
    model = load_for_eval(opts.model, opts.weights, opts.variant, opts.device, opts.precision, opts.clip)
    rows = []
    for dataset, task_text in SUITES[opts.suite]:
        task = parse_task(task_text)
        assert task is not None
        folder = root / dataset
        missing = _suite_missing(folder, task)
        if missing:
            row = SuiteRow(dataset, task.label, missing=missing)
        else:
            pairs = find_pairs(folder, task)[: opts.limit]
            save = opts.save_images / f"{dataset}-{task.label.replace(':', '')}" if opts.save_images else None
            report = evaluate_pairs(model, pairs, task=task, protocol=protocol, dataset=dataset,
                                    crop_border=opts.crop_border, save_images=save, on_image=on_image)
            row = SuiteRow(dataset, task.label, report=report)
        rows.append(row)
        if on_set is not None:
            on_set(row)
    return SuiteReport(opts.suite, protocol.name, opts.model, tuple(rows))


# The protocols and pairs are this module's vocabulary too: callers may take them from here.
__all__ = [
    "EvalOptions", "ImageScore", "EvalReport", "LoadedModel", "load_for_eval", "evaluate_pairs", "evaluate",
    "data_root", "SuiteRow", "SuiteReport", "run_suite", "PROTOCOLS", "SUITES", "EvalProtocol", "Task", "parse_task",
    "Pair", "find_pairs", "iter_inputs",
]
