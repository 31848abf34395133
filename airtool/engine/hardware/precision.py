"""``--precision auto`` on the CPU, measured: bf16 only where it is faster than fp32 here.

Why measured: bf16 hardware does not make bf16 fast everywhere. The same AVX512-BF16 flag made
SymUNet about twice as fast in bf16 on a Zen 4 EPYC and slower on an Intel Xeon whose AMX the
hypervisor hides (docs/performance.md#bf16-or-fp32-on-the-cpu). So where a model's policy would
take bf16 on a CPU with bf16 hardware, the first run times one pass of each precision
(``PROBE_SIDE`` px, after a warm-up) and keeps bf16 only if it takes at most ``FASTER`` of fp32's
time. The answer is kept per CPU,
torch version, thread count and model in ``$XDG_CACHE_HOME/airtool/cpu-precision.json``.
``AIRTOOL_CPU_BF16=1`` skips the measurement (bf16), ``=0`` means fp32 (``engine.device``).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from airtool.engine.inference import autotile

if TYPE_CHECKING:
    from airtool.engine.inference.infer import Restorer

CACHE_NAME = "cpu-precision.json"
PROBE_SIDE = 192
FASTER = 0.9  # bf16 must take at most this share of fp32's time (timing noise on a shared CPU)


def choose(restorer: Restorer) -> Restorer:
    """``restorer`` as it is, or at fp32 when its ``auto`` bf16 measured no faster on this CPU."""
    runtime = restorer.runtime
    if runtime.device.type != "cpu" or runtime.precision != "bf16" or os.environ.get("AIRTOOL_CPU_BF16") == "1":
        return restorer
    key = _key(restorer)
    entry = autotile.load_entry(key, CACHE_NAME)
    if entry is None or entry.get("precision") not in ("fp32", "bf16"):
        seconds = {p: _time_pass(restorer, p) for p in ("fp32", "bf16")}
        entry = {"precision": "bf16" if seconds["bf16"] <= FASTER * seconds["fp32"] else "fp32",
                 "seconds": seconds, "side": PROBE_SIDE}
        autotile.store_entry(key, entry, CACHE_NAME)
    if entry["precision"] == "bf16":
        return restorer
    restorer.close()
    return restorer.with_precision("fp32")


def _key(restorer: Restorer) -> str:
    """The timing key without the precision: what the choice depends on."""
    return restorer.timing_key().rsplit(" | ", 1)[0]


def _time_pass(restorer: Restorer, precision: str) -> float:
    """Seconds of one eager pass at ``precision`` (never compiled: compiling would cost minutes)."""
    import torch

    from airtool.engine.hardware.device import Runtime
    from airtool.engine.inference.infer import Restorer

    probe = Restorer(restorer.model, restorer.spec, Runtime(restorer.runtime.device, precision), restorer.tiles)
    batch = torch.rand(1, 3, PROBE_SIDE, PROBE_SIDE, generator=torch.Generator().manual_seed(0))
    try:
        with torch.inference_mode():
            probe.forward_batch(batch)  # warm-up: oneDNN builds its kernels on the first call
            start = time.perf_counter()
            probe.forward_batch(batch)
            return time.perf_counter() - start
    finally:
        probe.close()
