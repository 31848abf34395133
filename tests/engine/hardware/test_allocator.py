"""engine/hardware/allocator.py: glibc's malloc keeps freed tensor memory, unless the user chose otherwise."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from airtool.engine.hardware.allocator import why_left_alone

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")

# Where glibc puts a 16 MB block and what it keeps after freeing it (mallinfo2, glibc >= 2.33):
# prints the malloc state, the bytes mapped for the block, and the free bytes kept at the heap's top.
WHERE_A_BLOCK_GOES = """
import ctypes
from airtool.engine.hardware.allocator import tune_malloc
state = tune_malloc()
libc = ctypes.CDLL(None)
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
before = libc.mallinfo2().hblkhd
block = libc.malloc(16 << 20)
ctypes.memset(block, 1, 16 << 20)
mapped = libc.mallinfo2().hblkhd - before
libc.free(block)
print(state)
print(mapped, libc.mallinfo2().keepcost)
"""


def clean_environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k not in ("AIRTOOL_MALLOC",)}
    env.pop("LD_PRELOAD", None)
    return {**env, **extra}


def where_a_block_goes(**extra: str) -> tuple[str, int, int]:
    done = subprocess.run([sys.executable, "-c", WHERE_A_BLOCK_GOES], env=clean_environ(**extra),
                          capture_output=True, text=True, check=True)
    state, numbers = done.stdout.strip().splitlines()[-2:]
    mapped, kept = (int(n) for n in numbers.split())
    return state, mapped, kept


@pytest.mark.parametrize(("environ", "reason"), [
    ({"AIRTOOL_MALLOC": "default"}, "AIRTOOL_MALLOC=default"),
    ({"MALLOC_ARENA_MAX": "2"}, "MALLOC_ARENA_MAX is set"),
    ({"MALLOC_TRIM_THRESHOLD_": "0"}, "MALLOC_TRIM_THRESHOLD_ is set"),
    ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}, "GLIBC_TUNABLES sets glibc.malloc"),
    ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "jemalloc is preloaded"),
    ({"LD_PRELOAD": "libtcmalloc_minimal.so.4"}, "tcmalloc is preloaded"),
])
def test_a_users_own_malloc_choice_is_left_alone(environ, reason):
    assert why_left_alone(environ) == reason


@needs_glibc
def test_a_plain_environment_is_tuned():
    assert why_left_alone({"AIRTOOL_MALLOC": "tuned", "GLIBC_TUNABLES": "glibc.cpu.x86_shstk=off"}) is None


@needs_glibc
def test_tuned_a_freed_block_stays_in_the_heap_for_the_next_tensor():
    state, mapped, kept = where_a_block_goes()
    assert state == "tuned"
    assert mapped == 0  # under the 32 MB threshold: from the heap, not a mapping of its own
    assert kept >= 16 << 20  # and not given back to the kernel when freed


@needs_glibc
def test_with_glibcs_own_settings_the_block_is_mapped_and_given_back():
    state, mapped, kept = where_a_block_goes(AIRTOOL_MALLOC="default")
    assert state == "default (AIRTOOL_MALLOC=default)"
    assert mapped >= 16 << 20
    assert kept < 16 << 20


@needs_glibc
def test_free_memory_goes_back_only_after_a_large_picture_and_only_when_tuned(monkeypatch):
    from airtool.engine.hardware import allocator

    monkeypatch.setattr(allocator, "_state", "tuned")
    assert allocator.give_back_after(allocator.LARGE_PICTURE_BYTES)
    assert not allocator.give_back_after(allocator.LARGE_PICTURE_BYTES - 1)  # a small picture: the heap keeps it
    monkeypatch.setattr(allocator, "_state", "default (AIRTOOL_MALLOC=default)")
    assert not allocator.give_back_after(allocator.LARGE_PICTURE_BYTES)
