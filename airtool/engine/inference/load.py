"""The one path from a model name to a running network: ``load_restorer``.

restore, evaluate, bench and the development tools (``tools/``) all call it, so that building the
module, loading its weights (safely and strictly), choosing the device and precision and wrapping it
for whole-picture inference happen in one place.
"""

from __future__ import annotations

from pathlib import Path

from airtool.engine.inference.infer import Restorer, TileOptions, cpu_timing
from airtool.models import DEFAULT_MODEL


def load_restorer(
    model: str = DEFAULT_MODEL,
    weights: str | Path | None = None,
    *,
    variant: str | None = None,
    device: str = "auto",
    precision: str = "auto",
    clip: str | Path | None = None,
    tiles: TileOptions | None = None,
    compile: bool = False,
    random_seed: int | None = None,
) -> Restorer:
    """A registered model with its weights (the shipped file by default), on ``device`` at
    ``precision`` (``auto``: as ``engine/hardware/precision.py`` chooses it for that device and
    model), wrapped as a ``Restorer``.

    ``random_seed``: random weights from that seed instead of a file (speed benchmarks).
    ``tiles`` defaults to whole pictures (no tiling), as evaluation and benchmarks want.
    """
    from airtool.engine.hardware import precision as hardware_precision
    from airtool.engine.hardware.allocator import tune_malloc
    from airtool.engine.hardware.device import Runtime, resolve_device
    from airtool.models.weights import load_model

    tune_malloc()  # before the first pass: freed tensors stay in the process (engine/hardware/allocator.py)
    module, spec = load_model(model, weights, variant, clip, random_seed=random_seed)
    torch_device = resolve_device(device)
    # auto on a CPU: bf16 only where it measured faster there
    timing = cpu_timing(module, spec, torch_device)
    chosen = hardware_precision.resolve_precision(spec.precision, torch_device, precision, measure=timing)
    return Restorer(module, spec, Runtime(torch_device, chosen), tiles or TileOptions(tile=0), compile=compile)
