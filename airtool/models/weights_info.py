"""What a weights file can restore: the tasks it was trained on and its measured scores.

Read from the ``manifest.json`` beside the file (what ships in ``weights/``), else from the
manifest entry that ``airtool train export`` stores in the file's safetensors metadata, else from
the rest of that metadata. No torch import: ``airtool models`` and the restore summary use this.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airtool.tasks import SETTINGS, TASKS

MANIFEST_NAME = "manifest.json"
EMBEDDED_ENTRY_KEY = "airtool_manifest_entry"  # safetensors metadata: the entry as JSON, without sha256


@dataclass(frozen=True)
class WeightsInfo:
    file: str
    path: str
    sha256: str
    model: str | None = None
    variant: str | None = None
    setting: str | None = None
    tasks: tuple[str, ...] = ()  # what the weights were trained to restore; () = not recorded
    steps: int | None = None
    # benchmark -> dataset -> [PSNR, SSIM], for these weights and for the degraded input (identity)
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    input_scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def untrained_tasks(self) -> tuple[str, ...]:
        return tuple(t for t in TASKS if t not in self.tasks) if self.tasks else ()

    def coverage(self) -> str:
        """One phrase for people: 'trained for noise, rain, haze; not for blur, lowlight'."""
        if not self.tasks:
            return "tasks not recorded (no manifest entry or airtool metadata)"
        missing = f"; not for {', '.join(self.untrained_tasks)}" if self.untrained_tasks else ""
        return f"trained for {', '.join(self.tasks)}{missing}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tasks"] = list(self.tasks)
        data["untrained_tasks"] = list(self.untrained_tasks)
        return data


def weights_dir() -> Path:
    """Where shipped weights live: ``$AIRTOOL_WEIGHTS``, else the installed package data."""
    env = os.environ.get("AIRTOOL_WEIGHTS")
    if env:
        return Path(env)
    packaged = Path(__file__).resolve().parent.parent / "weights"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "weights"  # running from a source checkout


def describe(path: str | Path, sha256: str | None = None) -> WeightsInfo:
    """Facts about the weights file at ``path`` (the manifest's sha256 is trusted when given
    none; ``restore`` passes the one it verified)."""
    path = Path(path)
    entry = read_manifest_entry(path)
    meta = {} if entry else safetensors_metadata(path)
    setting = entry.get("setting") or meta.get("airtool_setting")
    return WeightsInfo(
        file=path.name, path=str(path), sha256=sha256 or entry.get("sha256") or sha256_of(path),
        model=entry.get("model") or meta.get("airtool_model"),
        variant=entry.get("variant") or meta.get("airtool_variant"),
        setting=setting, tasks=_tasks(entry, meta, setting),
        steps=_int(entry.get("steps") or meta.get("airtool_steps")),
        **_scores(entry),
    )


def read_manifest_entry(path: Path) -> dict[str, Any]:
    """The file's entry in the manifest beside it, else the entry stored in the file ({} if none)."""
    try:
        manifest = json.loads((path.parent / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        manifest = None
    entry = manifest.get("files", {}).get(path.name) if isinstance(manifest, dict) else None
    return entry if isinstance(entry, dict) else embedded_entry(path)


def embedded_entry(path: Path) -> dict[str, Any]:
    """The manifest entry ``airtool train export`` stored in the file's metadata ({} if none)."""
    try:
        entry = json.loads(safetensors_metadata(path).get(EMBEDDED_ENTRY_KEY, "{}"))
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


def _tasks(entry: dict[str, Any], meta: dict[str, str], setting: str | None) -> tuple[str, ...]:
    """The tasks of the training data, in airtool's task order; else those of the setting."""
    sources = [s.get("task") for s in entry.get("data", []) if isinstance(s, dict)]
    if not sources and meta.get("airtool_train_config"):
        try:
            config = json.loads(meta["airtool_train_config"])
            sources = [s.get("task") for s in config.get("data", {}).get("sources", [])]
        except (ValueError, AttributeError):
            sources = []
    if sources:
        return tuple(t for t in TASKS if t in sources)
    return SETTINGS.get(setting or "", ())


def _scores(entry: dict[str, Any]) -> dict[str, Any]:
    """This model's and the input's rows of each benchmark in the manifest (heldout_val is not one)."""
    model = entry.get("model")
    ours: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    for bench, table in (entry.get("scores") or {}).items():
        if isinstance(table, dict) and model in table:
            ours[bench] = table[model]
            if "identity" in table:
                inputs[bench] = table["identity"]
    return {"scores": ours, "input_scores": inputs}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its JSON header (no torch)."""
    if path.suffix != ".safetensors":
        return {}
    try:
        with open(path, "rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > 100_000_000:
                return {}
            header = json.loads(fh.read(length))
    except (OSError, ValueError, struct.error):
        return {}
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
