"""The run folder ``<output_dir>/<name>/`` apart from its checkpoints: finding it, its resolved
``config.yaml`` and ``command.txt``, the ``log.jsonl`` event log and the ``metrics.csv`` curve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airtool.config import load_yaml, to_yaml
from airtool.engine.training.checkpoints import list_checkpoints
from airtool.engine.training.config import TrainConfig
from airtool.errors import ConfigError
from airtool.tasks import TASKS

Event = dict[str, Any]


def resolve_run(run: str | Path, output_dir: str | Path = "runs") -> Path:
    """A run folder given as a path, or as a name under ``output_dir``."""
    for candidate in (Path(run), Path(output_dir) / str(run)):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise ConfigError(f"{run}: not a run folder (no config.yaml here or under {output_dir}/)")


def load_run_config(run: Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """The resolved config saved in a run folder, with ``--set`` overrides (e.g. more steps)."""
    return load_yaml(run / "config.yaml", TrainConfig, overrides)


def prepare_run(cfg: TrainConfig, run: Path, resume: bool, command: str) -> None:
    from airtool.io.atomic import write_bytes

    if not resume and list_checkpoints(run / "checkpoints"):
        raise ConfigError(
            f"{run} already has checkpoints; continue it with --resume {run}, or pick another --set name=..."
        )
    run.mkdir(parents=True, exist_ok=True)
    write_bytes(run / "config.yaml", to_yaml(cfg).encode())
    if command:
        with open(run / "command.txt", "a", encoding="utf-8") as fh:
            fh.write(command + "\n")


def append_jsonl(path: Path, record: Event) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")


METRICS_CSV = "metrics.csv"
METRICS_COLUMNS = ("event", "step", "loss", "lr", "samples_per_s", "val_psnr", "val_ssim",
                   *(f"val_psnr_{task}" for task in TASKS))


def append_metrics_csv(path: Path, event: Event) -> None:
    """One row per logged step (loss, learning rate, samples/s over the logging window) and per
    validation (mean and per-task held-out PSNR); a header is written when the file is new."""
    import csv

    new = not path.is_file()
    with open(path, "a", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(METRICS_COLUMNS)
        row = {"event": event["event"], **event}
        writer.writerow(["" if row.get(c) is None else row.get(c, "") for c in METRICS_COLUMNS])
