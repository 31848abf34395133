"""Development tools: benchmarks and figure scripts kept out of the installed package.

Run from the repository root as ``python -m tools.NAME``; nothing in ``airtool/`` imports them."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout: tools/ is found from here, not installed


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with the checkout first on PYTHONPATH, so that a child
    ``python -m tools.NAME`` finds tools/ whatever its working directory."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env
