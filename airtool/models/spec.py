"""What the runtime needs to know about a model, kept beside the model (no torch import here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airtool.precision import PRECISIONS  # re-exported here: the one table of names

WHOLE_IMAGE_ONLY = 0  # a ``min_tile`` entry: no tile that was measured matched the whole image

if TYPE_CHECKING:
    from torch import nn


def check_precision_name(value: str, allow_auto: bool = True) -> None:
    """A usage error (exit 2) for a precision no model offers, before any work starts."""
    names = ("auto", *PRECISIONS) if allow_auto else PRECISIONS
    if value not in names:
        from airtool.errors import UsageError

        raise UsageError(f"--precision {value!r}: choose one of {', '.join(names)}")


def check_threads(threads: int | None) -> None:
    if threads is not None and threads < 1:
        from airtool.errors import UsageError

        raise UsageError(f"--threads {threads}: give 1 or more (or leave it out for torch's choice)")


@dataclass(frozen=True)
class PrecisionPolicy:
    """Which reduced precisions are known to be safe for a model, per device type.

    ``bf16_max_abs_dev`` is the measured max |fp32 - bf16| output deviation on a test image
    (0..1 scale) that justified the entry; ``None`` means it was not measured.
    """

    cpu: tuple[str, ...] = ("fp32", "bf16")
    cuda: tuple[str, ...] = ("fp32", "bf16")
    mps: tuple[str, ...] = ("fp32",)
    auto_cpu: str = "fp32"
    auto_cuda: str = "bf16"
    bf16_max_abs_dev: float | None = None
    note: str = ""

    def allowed(self, device_type: str) -> tuple[str, ...]:
        return getattr(self, device_type, ("fp32",))

    def auto(self, device_type: str) -> str:
        if device_type == "cuda":
            return self.auto_cuda
        if device_type == "cpu":
            return self.auto_cpu
        return "fp32"


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it and the facts the engine relies on.

    ``variants`` maps a variant name ("paper", "tiny", ...) to a config dataclass instance;
    "paper" is the faithful configuration whose parameter count is ``params``.
    ``weights`` maps a setting name ("aio3", ...) to a file name under ``weights/``.
    ``needs_clip``: the model reads semantics from a frozen CLIP image encoder given by a local
    path (``--clip``), attached after it is built (``attach_clip``; see ``models.clip_encoder``).
    ``min_tile`` maps a task to the smallest square tile (pixels, at the default 32 px overlap) whose
    tiled result stays within 0.05 dB of the whole image (either way) on that task's evaluation set
    (``WHOLE_IMAGE_ONLY``: none did), as ``python -m tools.tile_safety`` measures it; a
    tile sees only its own pixels, and a degradation judged from the whole picture (haze) needs more
    of them than a local one (noise).
    """

    name: str
    title: str
    paper: str
    code: str
    build: Callable[[Any], nn.Module]
    variants: Mapping[str, Any]
    params: int | None
    size_multiple: int = 8
    precision: PrecisionPolicy = field(default_factory=PrecisionPolicy)
    weights: Mapping[str, str] = field(default_factory=dict)
    default_weights: str | None = None
    needs_weights: bool = True
    notes: str = ""
    family: str | None = None  # the architecture's registry name when this entry is a resized copy
    default_variant: str = "paper"
    needs_clip: bool = False
    min_tile: Mapping[str, int] = field(default_factory=dict)

    def tile_floor(self, task: str | None = None) -> float:
        """The smallest tile ``--tile auto`` may choose (``math.inf``: only the whole image).

        Without ``task`` (a restore does not know a picture's degradation) the largest over the
        measured tasks, since any of them may come in; a model nobody measured keeps to the whole
        image, as a tile can cost quality nobody has seen."""
        import math

        sizes = [self.min_tile[task]] if task in self.min_tile else list(self.min_tile.values())
        if not sizes or WHOLE_IMAGE_ONLY in sizes:
            return math.inf
        return float(max(sizes))

    def config(self, variant: str | None = None) -> Any:
        variant = variant or self.default_variant
        try:
            return self.variants[variant]
        except KeyError:
            names = ", ".join(sorted(self.variants))
            from airtool.errors import UsageError

            raise UsageError(f"model {self.name!r} has no variant {variant!r} (have: {names})") from None

    def create(self, variant: str | None = None, **overrides: Any) -> nn.Module:
        import dataclasses

        cfg = self.config(variant)
        if overrides:
            cfg = dataclasses.replace(cfg, **overrides)
        return self.build(cfg)
