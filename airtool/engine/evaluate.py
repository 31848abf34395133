"""``airtool evaluate``: score a model on paired folders or benchmark suites, per paper protocol.

Protocols (models.md §8, conventions.md §5; metric details in ``airtool.metrics``):

=========  =====================================  =====================  =========================
protocol   test-time crop                         noise synthesis        metrics
=========  =====================================  =====================  =========================
promptir   both images centre-cropped to ×16      uint8: clip+truncate   RGB, clipped, uniform SSIM
moce       as promptir                            as promptir            SSIM Gaussian (skimage)
symunet    ×16 only for the noise sets            as promptir, seed 42   as promptir, unclamped
ndr        none (the model pads internally)       float σ/255, clipped   Wang SSIM on 0-255
basicsr-y  none; ``--crop-border`` N              as promptir            8-bit, BT.601 Y
=========  =====================================  =====================  =========================

Noisy inputs are made from a clean folder the papers' way, reproducibly: files in sorted order,
one ``np.random.RandomState(seed)`` stream (``np.random.seed(0)`` + ``randn`` in
AirNet/PromptIR) that runs through σ = 15, 25 and 50 in turn, noise drawn on the cropped image.
Inference is full-image, batch 1, fp32, no
tiling (models pad internally). Pairs are matched by file stem (``input/0001.jpg`` ↔
``target/0001.png``); SOTS' original ``0001_0.8_0.2.jpg`` names fall back to the part before
the first ``_``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from airtool.errors import InputError, UsageError
from airtool.io.folders import list_images, read_rgb
from airtool.metrics import METRIC_SPECS, MetricSpec, center_crop_to_multiple, score
from airtool.models.spec import check_precision_name


@dataclass(frozen=True)
class EvalProtocol:
    name: str
    metric: MetricSpec
    crop_multiple: int = 16  # 1 = no test-time crop
    crop_noise_only: bool = False  # SymUNet crops only BSD68
    noise: Literal["uint8", "float"] = "uint8"
    noise_seed: int = 0
    paper: str = ""


PROTOCOLS: dict[str, EvalProtocol] = {
    "promptir": EvalProtocol("promptir", METRIC_SPECS["promptir"], paper="AirNet/PromptIR/DaAIR/AnyIR"),
    "moce": EvalProtocol("moce", METRIC_SPECS["moce"], paper="MoCE-IR"),
    "symunet": EvalProtocol("symunet", METRIC_SPECS["symunet"], crop_noise_only=True, noise_seed=42, paper="SymUNet"),
    "ndr": EvalProtocol("ndr", METRIC_SPECS["ndr"], crop_multiple=1, noise="float", paper="NDR-Restore"),
    "basicsr-y": EvalProtocol("basicsr-y", METRIC_SPECS["basicsr-y"], crop_multiple=1, paper="BasicSR/Restormer"),
}

# Paper column order (models.md §9): SOTS · Rain100L · BSD68 σ15/25/50 (3-task);
# SOTS · Rain100L · BSD68 σ25 · GoPro · LOL-v1 (5-task).
SUITES: dict[str, tuple[tuple[str, str], ...]] = {
    "3task": (("SOTS_outdoor_mini", "haze"), ("Rain100L", "rain"), ("CBSD68", "noise:15"),
              ("CBSD68", "noise:25"), ("CBSD68", "noise:50")),
    "5task": (("SOTS_outdoor_mini", "haze"), ("Rain100L", "rain"), ("CBSD68", "noise:25"),
              ("GoPro_blur_sample", "blur"), ("LOL_eval15_lowonly", "lowlight")),
}
TASK_NAMES = ("noise", "rain", "haze", "blur", "lowlight")


@dataclass(frozen=True)
class Task:
    name: str
    sigma: float | None = None

    @property
    def label(self) -> str:
        return f"{self.name}:{self.sigma:g}" if self.sigma is not None else self.name


def parse_task(text: str | None) -> Task | None:
    """``noise:25`` -> Task("noise", 25.0); ``rain`` -> Task("rain"); bad text raises UsageError."""
    if text is None:
        return None
    name, _, value = text.partition(":")
    if name not in TASK_NAMES:
        raise UsageError(f"--task {text!r}: choose one of noise:SIGMA, {', '.join(TASK_NAMES[1:])}")
    if name != "noise":
        if value:
            raise UsageError(f"--task {text!r}: only noise takes a value (noise:SIGMA)")
        return Task(name)
    try:
        sigma = float(value)
    except ValueError:
        raise UsageError(f"--task {text!r}: expected noise:SIGMA (0-255 scale), e.g. noise:25") from None
    if not 0 < sigma <= 255:
        raise UsageError(f"--task {text!r}: sigma must be in (0, 255]")
    return Task("noise", sigma)


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

    def summary(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "task": self.task, "protocol": self.protocol, "model": self.model,
                "psnr": self.psnr, "ssim": self.ssim, "count": self.count,
                "seconds_per_image": self.seconds_per_image}


# -- pairs and inputs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    name: str
    target: Path
    input: Path | None  # None: synthesise the degraded input (noise from a clean folder)


def find_pairs(folder: Path, task: Task | None) -> list[Pair]:
    """Pairs of ``folder/input`` and ``folder/target`` by stem, or clean images for ``noise:σ``.

    Raises ``UsageError`` when the folder is missing, holds no pairs, or is clean-only without
    a noise task.
    """
    if not folder.is_dir():
        raise UsageError(f"{folder}: data folder not found")
    if (folder / "input").is_dir() and (folder / "target").is_dir():
        targets = {p.stem: p for p in list_images(folder / "target")}
        pairs = []
        for inp in list_images(folder / "input"):
            target = targets.get(inp.stem) or targets.get(inp.stem.split("_")[0])
            if target is not None:
                pairs.append(Pair(inp.stem, target, inp))
        if not pairs:
            raise UsageError(f"{folder}: no input/target pairs with matching file stems")
        return pairs
    if task is None or task.name != "noise":
        raise UsageError(f"{folder}: no input/ and target/ folders; a clean-only folder needs --task noise:SIGMA")
    clean = list_images(folder)
    if not clean:
        raise UsageError(f"{folder}: no images")
    return [Pair(p.stem, p, None) for p in clean]


# σ levels of the papers' noise test, run in this order on one RandomState stream (models.md §8).
PAPER_SIGMAS = (15.0, 25.0, 50.0)


def synth_noise(clean: np.ndarray, sigma: float, rng: np.random.RandomState, kind: str) -> np.ndarray:
    """The papers' test noise. ``uint8``: uint8(clip(clean_u8 + σ·randn, 0, 255)), truncation
    (AirNet/PromptIR: ``airtool.degrade.noise.promptir_noise``). ``float``: clip(clean +
    σ/255·randn, 0, 1), not quantised (NDR-Restore)."""
    if kind == "float":
        return np.clip(clean + rng.randn(*clean.shape) * (sigma / 255.0), 0.0, 1.0).astype(np.float32)
    from airtool.degrade.noise import promptir_noise

    return promptir_noise(clean, sigma, rng)


def noise_stream(protocol: EvalProtocol, sigma: float, shapes: list[tuple[int, ...]]) -> np.random.RandomState:
    """The RandomState positioned where the papers' test script is when σ's images start.

    Their scripts seed once and run σ = 15, 25, 50 back to back over the same (here: sorted)
    file list, so σ = 25 starts after the σ = 15 draws. Reproducing that offset makes a single
    ``--task noise:25`` run equal the σ25 column of ``--suite 3task``. Other σ start fresh.
    """
    rng = np.random.RandomState(protocol.noise_seed)
    if sigma in PAPER_SIGMAS:
        for _ in range(PAPER_SIGMAS.index(sigma)):
            for shape in shapes:
                rng.randn(*shape)
    return rng


def _shape(path: Path, crop: int) -> tuple[int, int, int]:
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
    return (h - h % crop, w - w % crop, 3) if crop > 1 else (h, w, 3)


def iter_inputs(
    pairs: list[Pair], task: Task | None, protocol: EvalProtocol
) -> Iterator[tuple[Pair, np.ndarray, np.ndarray]]:
    """(pair, degraded, target) arrays after the protocol's crop, noise made in file order."""
    is_noise = task is not None and task.name == "noise"
    crop = protocol.crop_multiple if (is_noise or not protocol.crop_noise_only) else 1
    rng = None
    if is_noise and any(p.input is None for p in pairs):
        assert task is not None and task.sigma is not None
        rng = noise_stream(protocol, task.sigma, [_shape(p.target, crop) for p in pairs])
    for pair in pairs:
        target = read_rgb(pair.target)
        if crop > 1:
            target = center_crop_to_multiple(target, crop)
        if pair.input is None:
            assert rng is not None and task is not None and task.sigma is not None
            degraded = synth_noise(target, task.sigma, rng, protocol.noise)
        else:
            degraded = read_rgb(pair.input)
            degraded = center_crop_to_multiple(degraded, crop) if crop > 1 else degraded
        if degraded.shape != target.shape:
            where = pair.input or pair.target
            raise InputError(where, f"size {degraded.shape[:2]} differs from target {target.shape[:2]}")
        yield pair, degraded, target


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
    from airtool.engine.load import load_restorer

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
        value_psnr, value_ssim = score(restored, target, spec)
        row = ImageScore(pair.name, value_psnr, value_ssim, seconds)
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


