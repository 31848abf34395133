"""Whether a timed interval had the CPUs to itself: run-queue wait, else CPU time against wall time."""

from __future__ import annotations

from airtool.engine.hardware import cpu_share
from airtool.engine.hardware.cpu_share import Sample, disturbed


def test_waiting_for_a_cpu_over_the_limit_is_disturbed():
    start = Sample(wall=10.0, cpu=5.0, waited=1.0)
    assert not disturbed(start, Sample(11.0, 6.0, 1.05), threads=1)  # waited 5 % of a second
    assert disturbed(start, Sample(11.0, 5.3, 1.75), threads=1)  # waited 75 %: another process ran
    # two threads over one second can wait two thread-seconds: 0.4 of them is 20 %
    assert disturbed(start, Sample(11.0, 6.6, 1.4), threads=2) == (0.2 > cpu_share.MAX_WAIT_SHARE)


def test_without_schedstat_the_cpu_time_the_process_got_decides():
    start = Sample(wall=0.0, cpu=0.0, waited=None)
    assert not disturbed(start, Sample(1.0, 0.9, None), threads=1)
    assert disturbed(start, Sample(1.0, 0.3, None), threads=1)


def test_threads_beyond_the_cores_are_not_expected_to_run(monkeypatch):
    monkeypatch.setattr(cpu_share.os, "cpu_count", lambda: 2)
    start = Sample(wall=0.0, cpu=0.0, waited=None)
    assert not disturbed(start, Sample(1.0, 1.9, None), threads=16)  # 16 threads on 2 cores: 2 CPU-seconds at most


def test_run_queue_wait_counts_every_thread_of_the_process():
    """On Linux the sum over the threads: at least what the main thread alone has waited."""
    total = cpu_share.run_queue_wait()
    if total is None:
        return  # no schedstat here (not Linux): the CPU-time rule applies instead
    with open("/proc/self/schedstat") as fh:
        main_thread = int(fh.read().split()[1]) / 1e9
    assert cpu_share.run_queue_wait() >= main_thread >= 0


def test_the_missing_proc_files_give_none(monkeypatch):
    monkeypatch.setattr(cpu_share, "_TASKS", "/nonexistent/task")
    assert cpu_share.run_queue_wait() is None
    assert isinstance(cpu_share.sample().cpu, float)
