"""Keep freed tensor memory in the process, so the next tensor does not page-fault it in again.

glibc's malloc returns large blocks to the kernel when they are freed: every block above its
mmap threshold (dynamic, 128 KB to 32 MB) is its own mapping, and free memory at the top of the
heap beyond the trim threshold is given back. A network pass allocates and frees tensors of
several MB hundreds of times, so each one comes back from the kernel as fresh zeroed pages, one
page fault per 4 KB, a large part of a pass on a virtual machine (``tools/bench_allocator.py``;
figures in docs/performance.md#memory).

``tune_malloc`` fixes the mmap threshold at its largest value (32 MB on 64-bit glibc) and never
trims the heap: blocks up to 32 MB are reused from the heap, larger ones (whole pictures) are
still mapped and given back. Those two are what ``MALLOC_MMAP_THRESHOLD_=33554432
MALLOC_TRIM_THRESHOLD_=<huge>`` would set at start-up, set from inside instead, where they belong
to airtool. Memory freed after a pass stays with the process until it exits.

Kept memory has a cost where pictures are large: the heap also keeps what decoding one freed
(Pillow's 16 MB blocks, 4 bytes per pixel), on top of the picture's own buffers, and each decoder
thread's own arena keeps its share apart: a very large picture then peaked higher than with
glibc's settings. So all threads share one arena (``M_ARENA_MAX`` 1: the decoder and writer
threads allocate little and seldom), and after decoding or writing a picture of
LARGE_PICTURE_BYTES or more, ``give_back_after`` returns the free memory to the kernel
(``malloc_trim``): the next pass pays its page faults once, which a picture that large amortises
over its many tiles. The peaks of each step: docs/history.md#inference (``tools/bench_memory.py``).

It is left alone where the user chose: ``AIRTOOL_MALLOC=default``, any ``MALLOC_*`` variable or
a ``glibc.malloc`` tunable, or another allocator in ``LD_PRELOAD`` (jemalloc, tcmalloc,
mimalloc). Elsewhere than glibc (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Mapping

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc refuses more than HEAP_MAX_SIZE / 2 = 32 MB on 64-bit
TRIM_THRESHOLD_BYTES = 2**31 - 1  # mallopt takes a C int: 2 GB of free heap top, never reached in practice
LARGE_PICTURE_BYTES = 64 << 20  # after a picture this large is decoded or written, free memory goes back
OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

_state: str | None = None  # what tune_malloc did in this process, once decided


def why_left_alone(environ: Mapping[str, str] = os.environ) -> str | None:
    """The reason to leave malloc as it is, or None to tune it."""
    if environ.get("AIRTOOL_MALLOC", "") == "default":
        return "AIRTOOL_MALLOC=default"
    chosen = sorted(name for name in environ if name.startswith("MALLOC_"))
    if chosen:
        return f"{chosen[0]} is set"
    if "glibc.malloc" in environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES sets glibc.malloc"
    preload = environ.get("LD_PRELOAD", "")
    for name in OTHER_ALLOCATORS:
        if name in preload:
            return f"{name} is preloaded"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "not glibc"
    return None


def tune_malloc() -> str:
    """Apply the settings once per process; returns what the process's malloc now is.

    ``"tuned"``, or ``"default (REASON)"`` where it was left alone. Safe to call many times.
    """
    global _state
    if _state is not None:
        return _state
    reason = why_left_alone()
    if reason is None:
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
        ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
        ok = libc.mallopt(M_ARENA_MAX, 1) == 1 and ok
        reason = None if ok else "mallopt refused"
    _state = "tuned" if reason is None else f"default ({reason})"
    return _state


def give_back_after(picture_bytes: int) -> bool:
    """After a picture of ``picture_bytes`` was decoded or written: return free heap memory to the
    kernel if the picture was large and malloc is tuned. True when it did."""
    if _state != "tuned" or picture_bytes < LARGE_PICTURE_BYTES:
        return False
    ctypes.CDLL(None).malloc_trim(0)
    return True


def malloc_state() -> str:
    """What ``tune_malloc`` did in this process (``"untouched"`` before it ran)."""
    return _state or "untouched"
