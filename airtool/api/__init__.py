"""The Python API behind the CLI: every ``airtool`` subcommand is a thin layer over one of these,
and the tests call them directly.

- ``restore`` (``restore``) / ``degrade`` (``degrade``): files, folders, videos, stdin; a ``RunReport``;
- ``train`` / ``campaign`` / ``export`` (``train``): a run from a preset, YAML or config, the
  long SymUNet run advanced a few hours at a time, and a run's weights file;
- ``evaluate`` (``evaluate``): PSNR/SSIM by a paper's protocol, one set or a suite;
- ``bench`` / ``auto_tile`` (``bench``): inference speed, and the CPU tile timings;
- ``models`` (``models``): the registered models and their shipped weights.

Progress is one protocol, events (``progress``): pass ``on_event=callable``, or
``progress=True`` for a ``tqdm.auto`` bar; restore and degrade also take a ``Reporter``.
Nothing here prints, reads argv or imports torch at import time. Importing it before torch sets
``OMP_WAIT_POLICY=PASSIVE`` unless the caller chose a wait setting (``airtool/openmp.py``): torch's
threads then sleep rather than spin while they wait, which keeps runs beside busy jobs fair.
"""

from __future__ import annotations

from airtool.api.bench import auto_tile, bench, cpu_description, cpu_peak
from airtool.api.degrade import DegradeOptions, degrade
from airtool.api.evaluate import evaluate
from airtool.api.models import models
from airtool.api.progress import Event, EventReporter, EventSink, TqdmBar
from airtool.api.restore import restore
from airtool.api.train import campaign, export, presets, train
from airtool.engine.inference.options import BatchOptions, RestoreOptions
from airtool.openmp import prefer_passive_wait

prefer_passive_wait()  # none of the imports above loads torch

__all__ = [
    "BatchOptions", "DegradeOptions", "RestoreOptions", "build_restorer", "degrade", "describe_weights", "restore",
    "shard", "auto_tile", "bench", "cpu_description", "cpu_peak", "evaluate", "models", "Event", "EventReporter",
    "EventSink", "TqdmBar", "campaign", "export", "presets", "train", "EvalOptions", "BenchOptions",
]

# The options of restore, evaluate and bench live beside their engines, and restore's building
# blocks in it; named here so that callers (and the CLI) need nothing below the api layer.
# Imported on first use (BatchOptions and RestoreOptions above: api.degrade needs them anyway).
_LAZY = {
    "EvalOptions": "airtool.engine.evaluation.evaluate", "BenchOptions": "airtool.engine.inference.bench",
    "build_restorer": "airtool.engine.inference.restore_run", "describe_weights": "airtool.engine.inference.restore_recipe",
    "shard": "airtool.engine.inference.batch",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'airtool.api' has no attribute {name!r}")
