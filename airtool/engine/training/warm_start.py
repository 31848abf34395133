"""Warm start: begin a training run from an exported weights file instead of a random init.

``model.init: weights/daair-aio3.safetensors`` loads the file strictly into the model's
``inference_modules()`` (every key, every shape; training-only parts such as DaAIR's router
loss start as usual). The run then records where it started, so that the exported file's
manifest entry carries the whole lineage: every earlier run, its steps, data and wall time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from airtool.errors import WeightsError


def load_init_weights(model: nn.Module, model_name: str, path: str | Path) -> dict[str, Any]:
    """Load ``path`` into ``model`` strictly; returns what the run records about its start."""
    from airtool.models.weights import load_state_strict, read_state_dict, sha256_of, verify_against_manifest
    from airtool.models.weights_info import read_manifest_entry

    path = Path(path)
    verify_against_manifest(path)
    state, meta = read_state_dict(path)
    saved_for = meta.get("airtool_model")
    if saved_for and saved_for != model_name:
        raise WeightsError(f"{path}: weights of {saved_for!r}, not of {model_name!r} (model.init)")
    load_state_strict(model.inference_modules(), state, str(path))
    sha = sha256_of(path)
    entry = read_manifest_entry(path)  # the manifest's beside it, else the one stored in the file
    return {"file": str(path), "sha256": sha, "steps": _int(meta.get("airtool_steps")),
            "lineage": lineage_of(with_sha256(entry, sha) if entry else {}, path.name)}


def with_sha256(entry: dict[str, Any], sha: str) -> dict[str, Any]:
    """``entry`` with the sha256 of its file, which an entry stored inside that file lacks: its
    own and that of the last run of its lineage (the run that made the file)."""
    done = {**entry, "sha256": sha}
    if done.get("lineage") and done["lineage"][-1].get("sha256") is None:
        done["lineage"] = [*done["lineage"][:-1], {**done["lineage"][-1], "sha256": sha}]
    return done


def lineage_of(entry: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The runs behind a manifest entry, oldest first (an entry from before lineages: itself)."""
    if not entry:
        return []
    if entry.get("lineage"):
        return list(entry["lineage"])
    return [run_summary(entry, name)]


def run_summary(entry: dict[str, Any], name: str) -> dict[str, Any]:
    """One run of a lineage: the file it produced and how it was trained."""
    return {"file": name, "sha256": entry.get("sha256"), "steps": entry.get("steps"),
            "run_steps": entry.get("run_steps", entry.get("steps")), "core_hours": entry.get("core_hours"),
            "wall_time_s": entry.get("wall_time_s"), "hardware": entry.get("hardware"),
            "data": entry.get("data"), "command": entry.get("command", {}).get("train")}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
