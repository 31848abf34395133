"""Let torch's OpenMP threads sleep, not spin, while they wait for each other.

torch's CPU build runs its operators on GNU OpenMP (``libgomp``). Left to its defaults, a thread
that finishes its share of an operator spins for a while waiting for the others; when another
job keeps the cores busy, the thread it waits for is often not running, so the spinner burns
the core that thread needed. With waiting threads asleep (``OMP_WAIT_POLICY=PASSIVE``) a run
under load gets about its fair share of the cores, and quiet runs are as fast
(docs/performance.md#under-load). The runtime reads the setting once, when torch loads it, so
it must be in the environment before ``import torch``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

# Any of these set by the user is their choice for this run, and left alone (libgomp's own
# defaults come back with, e.g., GOMP_SPINCOUNT=300000; Intel's OpenMP reads KMP_BLOCKTIME).
USER_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def prefer_passive_wait(environ: MutableMapping[str, str] | None = None) -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` for this process and its children (data workers, torchrun
    ranks); True if it was set. Nothing changes where the user set a wait setting, or where torch
    is already loaded (too late: a caller who imports torch first sets the variable themselves)."""
    env = os.environ if environ is None else environ
    if any(name in env for name in USER_WAIT_SETTINGS) or "torch" in sys.modules:
        return False
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
