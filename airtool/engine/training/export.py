"""``airtool train export``: a run's newest good checkpoint as a safetensors weights file that
carries its own manifest entry (data, steps, hardware, wall time, commands; for a warm start the
starting file and the lineage of every run behind it) in its metadata, so that exporting writes
only the file asked for. The entry is added to a manifest file (with the file's sha256, which the
file cannot hold about itself) only when one is named: how ``weights/manifest.json`` is kept."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airtool.config import to_dict
from airtool.engine.training.checkpoints import load_latest_checkpoint
from airtool.engine.training.config import TrainConfig
from airtool.engine.training.data import describe
from airtool.engine.training.run_folder import load_run_config
from airtool.engine.training.warm_start import run_summary, with_sha256
from airtool.errors import UsageError
from airtool.io.atomic import atomic_path
from airtool.models import get_spec
from airtool.models.weights_info import EMBEDDED_ENTRY_KEY, MANIFEST_NAME


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sha256: str
    step: int
    manifest: Path | None


def export_run(
    run: Path, out: Path, *, use_ema: bool = True, command: str = "", manifest: Path | None = None,
    dtype: str = "bf16",
) -> ExportResult:
    """Write the (EMA) weights of ``inference_modules()`` from a run's newest good checkpoint as
    safetensors with the model, the training config and the manifest entry (data, steps,
    hardware, wall time, command) in its metadata; with ``manifest`` (a JSON file, or a folder
    for its ``manifest.json``), also add the entry, with the sha256, to that file."""
    from airtool.models.weights import save_weights

    manifest = _manifest_path(manifest)
    cfg = load_run_config(run)
    ckpt, ckpt_path, _ = load_latest_checkpoint(run / "checkpoints")
    spec = get_spec(cfg.model.name)
    variant = cfg.model.variant or spec.default_variant
    model = spec.create(variant)
    model.load_state_dict(ckpt["ema" if use_ema else "model"])
    model_cfg = to_dict(spec.config(variant))
    meta = {"airtool_setting": cfg.setting, "airtool_steps": str(ckpt["step"]),
            "airtool_train_config": json.dumps(to_dict(cfg), sort_keys=True), "airtool_ema": str(use_ema).lower()}
    if ckpt.get("clip"):
        meta["airtool_clip"] = ckpt["clip"]  # the frozen encoder it was trained with (not in the file)
    out = Path(out)
    entry = _manifest_entry(cfg, variant, ckpt, run, model_cfg, command, dtype, out.name)
    meta[EMBEDDED_ENTRY_KEY] = json.dumps(entry, sort_keys=True)
    sha = save_weights(model.inference_modules(), out, model=cfg.model.name, variant=variant,
                       config=model_cfg, metadata=meta, dtype=dtype)
    if manifest is not None:
        add_to_manifest(manifest, out.name, with_sha256(entry, sha))
    return ExportResult(out, sha, int(ckpt["step"]), manifest)


def _manifest_path(manifest: Path | None) -> Path | None:
    """The manifest file to add the entry to: ``manifest`` itself, or a folder's manifest.json.
    Checked before the export's work, so a bad path costs nothing."""
    if manifest is None:
        return None
    manifest = Path(manifest)
    if manifest.is_dir():
        manifest = manifest / MANIFEST_NAME
    if manifest.suffix != ".json":
        raise UsageError(f"--manifest {manifest}: give a .json file or a folder for its {MANIFEST_NAME}")
    return manifest


def add_to_manifest(path: Path, name: str, entry: dict[str, Any]) -> None:
    """Add or replace the entry of file ``name`` in the manifest at ``path`` (made if missing,
    written atomically); an unreadable manifest is an error, never overwritten."""
    manifest: dict[str, Any] = {"files": {}}
    if path.is_file():
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise UsageError(f"--manifest {path}: not a readable manifest ({err})") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.setdefault("files", {}), dict):
            raise UsageError(f"--manifest {path}: not a manifest (no 'files' mapping)")
    manifest["files"][name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _manifest_entry(
    cfg: TrainConfig, variant: str, ckpt: dict[str, Any], run: Path, model_cfg: dict, command: str,
    dtype: str = "fp32", out_name: str = "",
) -> dict:
    """The file's manifest entry, all but its sha256 (which the file it is stored in cannot hold)."""
    commands = (run / "command.txt").read_text().splitlines() if (run / "command.txt").is_file() else []
    val = ckpt.get("val") or {}
    entry = {
        "model": cfg.model.name, "variant": variant, "setting": cfg.setting,
        "config": {"model": model_cfg, "train": to_dict(cfg)}, "data": describe(cfg.data),
        "steps": int(ckpt["step"]), "hardware": ckpt.get("hardware", ""), "dtype": dtype,
        "wall_time_s": round(float(ckpt.get("wall_time_s", 0.0)), 1),
        "run_steps": int(ckpt["step"]) - int(ckpt.get("start_step") or 0),  # trained in this run
        "core_hours": _core_hours(ckpt),
        "command": {"train": commands, "export": command},
        "scores": {"heldout_val": val} if val else {},
    }
    init = ckpt.get("init")
    if init:  # a warm start: this run continues the runs behind its starting file
        entry["init"] = {"file": init["file"], "sha256": init["sha256"], "steps": init.get("steps")}
        entry["lineage"] = [*init.get("lineage", []), run_summary(entry, Path(out_name).name)]
        entry["total_steps"] = sum(int(r.get("run_steps") or r.get("steps") or 0) for r in entry["lineage"])
        entry["total_wall_time_s"] = round(sum(float(r.get("wall_time_s") or 0) for r in entry["lineage"]), 1)
    return entry


def _core_hours(ckpt: dict[str, Any]) -> float | None:
    """The run's training CPU time in core-hours (process CPU seconds / 3600): pauses and other
    jobs' time do not count; on a 2-core machine, half of it is hours of the whole machine.
    None for checkpoints from before it was kept."""
    if "cpu_time_s" not in ckpt:
        return None
    return round(float(ckpt["cpu_time_s"]) / 3600.0, 4)
