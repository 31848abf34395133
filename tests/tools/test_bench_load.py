"""tools/bench_load.py: the table of quiet against loaded, and the helpers that keep it honest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tools.bench_load import Measurement, busy_loops, idle_share, paused_when_idle, print_table


def _row(workload: str, load: str, policy: str, seconds: float) -> Measurement:
    return Measurement(workload, load, policy, seconds, seconds + 2, 1.0, "python -m airtool ...")


def test_the_table_gives_loaded_over_quiet_per_workload_and_policy(capsys):
    print_table([_row("restore", "quiet", "default", 4.0), _row("restore", "quiet", "passive", 4.0),
                 _row("restore", "loaded", "default", 20.0), _row("restore", "loaded", "passive", 8.0)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:2] == ["restore", "default"] and lines[1].endswith("5.00x")
    assert lines[2].split()[:2] == ["restore", "passive"] and lines[2].endswith("2.00x")


def test_idle_share_is_a_share():
    assert 0.0 <= idle_share(0.05) <= 1.0


def _loops() -> set[str]:
    """Processes of this user running the busy loop."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"while True: pass" in fh.read():
                    found.add(pid)
        except OSError:
            continue
    return found


def test_busy_loops_run_during_the_block_only():
    before = _loops()
    with busy_loops(2):
        started = _loops() - before
        assert len(started) == 2
    assert not started & _loops()


def test_a_paused_group_is_resumed_after_the_block_even_on_an_error():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        try:
            with paused_when_idle(child.pid, need=0.0, wait=0.0):
                assert _state(child.pid) == "T"
                raise RuntimeError("a failed measurement")
        except RuntimeError:
            pass
        assert _state(child.pid) not in ("T", "t")  # running again: R, S, or D while it pages back in
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    with paused_when_idle(child.pid, need=0.0, wait=0.0):  # a group that has ended: nothing to do
        pass


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]
