"""The papers' evaluation protocols: crops, noise synthesis and metrics per protocol, the
benchmark suites, and the ``--task`` syntax.

Protocols, as each paper's own test code scores its tables (metric details in ``airtool.metrics``):

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

from dataclasses import dataclass
from typing import Literal

import numpy as np

from airtool.errors import UsageError
from airtool.metrics import METRIC_SPECS, MetricSpec


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

# The papers' table column order (PromptIR Table 1, DaAIR Tables 1-2): SOTS · Rain100L · BSD68 σ15/25/50 (3-task);
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


# σ levels of the papers' noise test, run in this order on one RandomState stream (PromptIR ``test.py``).
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


