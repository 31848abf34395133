"""Whether a timed interval had the CPUs to itself.

A timing taken while other processes compete for the cores measures the load, not the model: a
pass can take many times as long (docs/performance.md#under-load), and a tile choice made from it
would be wrong on every later run. So every timed pass is checked.

On Linux each thread's ``/proc/self/task/*/schedstat`` counts the time it was runnable but waited
for a CPU (its run-queue delay). On a quiet machine that stays near zero whatever the work's
parallelism; a competitor raises it in proportion (one other busy process on two cores: our two
threads waited three quarters of the time), and a niced competitor is no exception, since the
scheduler shares the CPUs between sessions before it looks at niceness. Where there is no
schedstat, the CPU time the process got, against wall time times its threads, stands in.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

MAX_WAIT_SHARE = 0.15  # threads that waited for a CPU over 15 % of the interval: disturbed
MIN_BUSY_SHARE = 0.5  # without schedstat: a process that ran under half of wall x threads: disturbed
_TASKS = "/proc/self/task"


@dataclass(frozen=True)
class Sample:
    """Clocks read at one instant: wall and process CPU seconds, and the run-queue wait (None: unknown)."""

    wall: float
    cpu: float
    waited: float | None


def sample() -> Sample:
    return Sample(time.perf_counter(), time.process_time(), run_queue_wait())


def disturbed(start: Sample, end: Sample, threads: int) -> bool:
    """Did other work take the CPUs from ``threads`` busy threads between the two samples?"""
    wall = end.wall - start.wall
    threads = max(1, min(threads, os.cpu_count() or 1))
    if wall <= 0:
        return False
    if start.waited is not None and end.waited is not None:
        return (end.waited - start.waited) / (wall * threads) > MAX_WAIT_SHARE
    return (end.cpu - start.cpu) / (wall * threads) < MIN_BUSY_SHARE


def run_queue_wait() -> float | None:
    """Seconds this process's threads have spent runnable but not running; None where the kernel
    does not count it (not Linux, or schedstat compiled out)."""
    try:
        tids = os.listdir(_TASKS)
    except OSError:
        return None
    total, read = 0, 0
    for tid in tids:
        try:
            with open(f"{_TASKS}/{tid}/schedstat") as fh:
                total += int(fh.read().split()[1])
            read += 1
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended between the listing and the read
    return total / 1e9 if read else None
