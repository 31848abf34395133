"""What was measured on this machine, kept between runs: small JSON files under
``$XDG_CACHE_HOME/airtool`` (``~/.cache`` by default), one entry per key.

A key names what a measurement depends on (the CPU, torch, threads, the model), so a changed
machine or model measures again. A cache that cannot be read is treated as empty and one that
cannot be written is skipped: the next run measures again.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from airtool.io.atomic import atomic_path


def cache_path(name: str) -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "airtool" / name


def load_entry(key: str, name: str) -> dict | None:
    """One entry of the cache file ``name``; None if absent or unreadable."""
    try:
        entry = json.loads(cache_path(name).read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return entry if isinstance(entry, dict) else None


def store_entry(key: str, entry: dict, name: str) -> None:
    """Merge one entry, stamped with the time it was measured, into the cache file ``name`` (atomically)."""
    _update(name, lambda data: {**data, key: {**entry, "measured": time.strftime("%Y-%m-%d %H:%M:%S")}})


def drop_entry(key: str, name: str) -> None:
    """Remove one entry from the cache file ``name``, so the next run measures again."""
    _update(name, lambda data: {k: v for k, v in data.items() if k != key})


def _update(name: str, change: Callable[[dict], dict]) -> None:
    path = cache_path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(path.read_text())
            data = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            data = {}
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(change(data), indent=1, sort_keys=True) + "\n")
    except OSError:
        pass  # a read-only home: measure again next time
