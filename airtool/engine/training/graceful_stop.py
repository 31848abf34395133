"""Stop a training run between two steps when it is asked to (Ctrl-C, ``kill``), so that the
steps it ran are kept in a checkpoint instead of lost with the process."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """The first SIGINT or SIGTERM is noted and the loop ends after its current step; a second
    one acts as it would have without this (Ctrl-C twice: stop now, without a checkpoint)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


@contextmanager
def stop_between_steps(enabled: bool = True) -> Iterator[StopRequest]:
    """Handlers for SIGINT and SIGTERM while the block runs (only in the main thread, where
    Python can install them), restored afterwards."""
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return
    for sig in STOP_SIGNALS:
        request._previous[sig] = signal.signal(sig, request._note)
    try:
        yield request
    finally:
        for sig, handler in request._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
