"""Checkpoint files of a run: RNG states kept as tensors and plain types (so that checkpoints load
with ``weights_only=True``), seeding, and atomic ``step-<N>.pt`` writes with pruning, listing and
loading, where ``load_latest_checkpoint`` falls back past damaged files to the newest good one."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from airtool.errors import WeightsError

CHECKPOINT_GLOB = "step-*.pt"


# -- RNG states as tensors and plain types, so checkpoints load with weights_only=True ------


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, mt, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -- checkpoints ----------------------------------------------------------------------------

_CHECKPOINT_KEYS = ("step", "model", "ema", "optimizer", "scheduler", "rng")


def save_checkpoint(folder: Path, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``step-<N>.pt`` atomically (temp file in ``folder`` + fsync + os.replace), then
    delete all but the newest ``keep`` checkpoints. A failed write (disk full...) raises
    ``OutputError`` and leaves the older checkpoints as they were."""
    from airtool.errors import OutputError
    from airtool.io.atomic import atomic_path

    path = folder / f"step-{state['step']:08d}.pt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            torch.save(state, fh)  # to a file object: a failed write raises OSError with its errno
    except OSError as err:
        reason = f"cannot write checkpoint ({err.strerror or err}); the older checkpoints are kept"
        raise OutputError(path, reason) from None
    for old in list_checkpoints(folder)[max(1, keep):]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints in ``folder``, newest step first."""
    return sorted(folder.glob(CHECKPOINT_GLOB), reverse=True) if folder.is_dir() else []


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint safely (``weights_only=True``); damage raises ``WeightsError``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, bad pickle opcode, unsafe global...
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise WeightsError(f"{path}: unreadable checkpoint ({reason})") from None
    missing = [k for k in _CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise WeightsError(f"{path}: not an airtool checkpoint (missing {', '.join(missing)})")
    return state


def load_latest_checkpoint(folder: Path) -> tuple[dict[str, Any], Path, list[str]]:
    """The newest readable checkpoint, its path, and one line per newer one that was damaged."""
    skipped: list[str] = []
    for path in list_checkpoints(folder):
        try:
            return load_checkpoint(path), path, skipped
        except WeightsError as err:
            skipped.append(str(err))
    detail = f" ({'; '.join(skipped)})" if skipped else ""
    raise WeightsError(f"{folder}: no readable checkpoint{detail}")
