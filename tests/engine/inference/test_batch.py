"""Batch machinery: failures don't stop the batch, Ctrl-C keeps finished work, reruns resume."""

from __future__ import annotations

import pytest

from airtool.engine.inference.batch import Stages, run_batch, shard
from airtool.errors import InputError
from airtool.io.atomic import TMP_MARK, write_bytes
from airtool.io.paths import plan
from airtool.report import NullReporter


def _inputs(tmp_path, n=5):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(n):
        (src / f"{i}.png").write_bytes(b"%d" % i)
    return src


def _stages(interrupt_at=None, bad=()):
    def compute(job, data):
        if job.rel == interrupt_at:
            raise KeyboardInterrupt
        if job.rel in bad:
            raise InputError(job.src, "bad on purpose")
        return data + b"!"

    def save(job, data):
        job.dst.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(job.dst, data)
        return str(job.dst)

    return Stages(load=lambda job: job.src.read_bytes(), compute=compute, save=save, is_done=lambda job: job.dst.exists())


def test_failures_are_recorded_and_the_batch_goes_on(tmp_path):
    src = _inputs(tmp_path)
    report = run_batch(plan([str(src)], str(tmp_path / "out")), _stages(bad={"1.png"}), NullReporter())
    assert report.exit_code == 3 and [r.input.endswith("1.png") for r in report.failed] == [True]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "2.png", "3.png", "4.png"]


def test_interrupt_keeps_finished_outputs_and_rerun_resumes(tmp_path):
    src = _inputs(tmp_path)
    work = plan([str(src)], str(tmp_path / "out"))
    report = run_batch(work, _stages(interrupt_at="3.png"), NullReporter(), prefetch=1)
    assert report.interrupted and report.exit_code == 130
    done = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert done == ["0.png", "1.png", "2.png"] and not any(TMP_MARK in n for n in done)
    again = run_batch(plan([str(src)], str(tmp_path / "out")), _stages(), NullReporter())
    assert again.count("skipped") == 3 and again.count("done") == 2 and again.exit_code == 0
    assert (tmp_path / "out" / "4.png").read_bytes() == b"4!"


def test_write_failure_leaves_no_partial_output(tmp_path, monkeypatch):
    src = _inputs(tmp_path, 2)
    import os

    real_replace = os.replace

    def disk_full(a, b):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    report = run_batch(plan([str(src)], str(tmp_path / "out")), _stages(), NullReporter())
    monkeypatch.setattr(os, "replace", real_replace)
    assert report.exit_code == 3 and all("No space left" in r.reason for r in report.failed)
    assert list((tmp_path / "out").iterdir()) == []


def test_outputs_get_normal_permissions(tmp_path):
    import os
    import stat

    dst = tmp_path / "x.bin"
    write_bytes(dst, b"data")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(dst.stat().st_mode) == 0o666 & ~mask


def test_each_file_reports_the_seconds_of_its_own_stages_not_its_wait_in_the_queue(tmp_path):
    """Four files whose inference takes 0.2 s each: each reports about 0.2 s, not the time since
    it was queued (the fourth would show about 0.8 s)."""
    import time

    src = _inputs(tmp_path, 4)

    def load(job):
        time.sleep(0.02)
        return job.src.read_bytes()

    def compute(job, data):
        time.sleep(0.2)
        return data

    def save(job, data):
        time.sleep(0.01)
        job.dst.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(job.dst, data)
        return str(job.dst)

    stages = Stages(load=load, compute=compute, save=save, is_done=lambda job: job.dst.exists(), compute_name="infer")
    report = run_batch(plan([str(src)], str(tmp_path / "out")), stages, NullReporter(), prefetch=2)
    assert report.count("done") == 4
    for result in report.results:
        stages_s = result.extra["decode_s"] + result.extra["infer_s"] + result.extra["write_s"]
        assert 0.2 <= result.extra["infer_s"] < 0.35 and result.extra["decode_s"] >= 0.02 and result.extra["write_s"] >= 0.01
        assert result.seconds == pytest.approx(stages_s, abs=1e-3) and result.seconds < 0.5


def test_under_torchrun_each_rank_takes_every_world_size_th_job(tmp_path, monkeypatch):
    jobs = plan([str(_inputs(tmp_path, n=5))], str(tmp_path / "out")).jobs
    assert shard(jobs) == jobs
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert [job.rel for job in shard(jobs)] == ["1.png", "3.png"]
