"""The peak resident memory of one stretch of work: a timed pass, one benchmark configuration."""

from __future__ import annotations

import os
import resource
import sys
import threading


class PeakRSS:
    """Samples this process's resident set size every few milliseconds while active.

    ``ru_maxrss`` only ever grows over the life of the process, so a per-configuration peak needs
    sampling; /proc/self/statm is read where it exists (Linux), ru_maxrss is the fallback.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def current() -> int:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            scale = 1 if sys.platform == "darwin" else 1024
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        _release_free_memory()
        self.peak = self.current()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


def _release_free_memory() -> None:
    """Give memory freed by earlier configurations back to the OS (glibc keeps it otherwise), so
    one configuration's peak is not inflated by the previous one's."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the peak may include earlier configurations
        pass
