"""The batch machinery shared by ``restore`` and ``degrade``.

Decoding runs ahead in worker threads, the device work runs in the calling thread, and encoding
plus the atomic write run in a writer thread, so the device does not wait on the disk. A bad
file becomes a failed ``FileResult`` and the batch goes on. Outputs that exist are skipped
(writes are atomic, so an existing output is complete), which is how an interrupted run resumes.

A video is one job: its frames stream through their own decode -> compute -> encode stages
inside ``compute`` (``airtool.engine.video``), and its ``save`` reports the result as ``Saved``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from airtool.errors import InputError
from airtool.io.paths import Job, Plan
from airtool.report import FileResult, Reporter, RunReport


@dataclass(frozen=True)
class Saved:
    """What ``save`` may return instead of a path: the path plus notes and extra report fields."""

    path: str
    notes: list[str]
    extra: dict[str, Any]


@dataclass
class Stages:
    """What to do per job. ``load`` runs in decoder threads, ``compute`` in the caller's thread,
    ``save`` in the writer thread and returns the output path(s) as a string (or ``Saved``); ``is_done`` tells
    whether a job's output already exists."""

    load: Callable[[Job], Any]
    compute: Callable[[Job, Any], Any]
    save: Callable[[Job, Any], str | Saved | None]
    is_done: Callable[[Job], bool]
    notes: Callable[[Any], list[str]] = lambda item: []


def run_batch(
    plan: Plan, stages: Stages, reporter: Reporter, *, overwrite: bool = False, dry_run: bool = False, prefetch: int = 2
) -> RunReport:
    report = RunReport()
    start = time.perf_counter()
    todo = _triage(plan, stages, report, overwrite, dry_run)
    reporter.start(len(todo) + len(report.results))
    for result in report.results:
        reporter.file(result)
    if not dry_run:
        try:
            _pipeline(todo, stages, reporter, report, prefetch)
        except KeyboardInterrupt:
            report.interrupted = True
    report.seconds = time.perf_counter() - start
    reporter.finish(report)
    return report


def _triage(plan: Plan, stages: Stages, report: RunReport, overwrite: bool, dry_run: bool) -> list[Job]:
    report.results += [FileResult(path, None, "failed", reason) for path, reason in plan.problems]
    todo = []
    for job in plan.jobs:
        if not overwrite and job.dst is not None and stages.is_done(job):
            report.results.append(FileResult(_name(job.src), str(job.dst), "skipped", "output exists"))
        elif dry_run:
            report.results.append(FileResult(_name(job.src), _name(job.dst), "planned"))
        else:
            todo.append(job)
    return todo


def _pipeline(todo: list[Job], stages: Stages, reporter: Reporter, report: RunReport, prefetch: int) -> None:
    with ThreadPoolExecutor(max(prefetch, 1), "airtool-decode") as decoders, ThreadPoolExecutor(1, "airtool-write") as writer:
        loads: deque[tuple[Job, Future, float]] = deque()
        saves: deque[tuple[Job, Future, float, list[str]]] = deque()
        pending = iter(todo)
        try:
            _fill(loads, pending, decoders, stages, prefetch + 1)
            while loads:
                job, future, t0 = loads.popleft()
                _fill(loads, pending, decoders, stages, prefetch + 1)
                _step(job, future, t0, stages, writer, saves, reporter, report)
                _drain(saves, reporter, report, keep=prefetch)
        except KeyboardInterrupt:
            for _, future, _ in loads:
                future.cancel()
            _drain(saves, reporter, report, keep=0)  # finished work is kept
            raise
        _drain(saves, reporter, report, keep=0)


def _fill(loads: deque, pending, decoders: ThreadPoolExecutor, stages: Stages, depth: int) -> None:
    while len(loads) < depth:
        job = next(pending, None)
        if job is None:
            return
        loads.append((job, decoders.submit(stages.load, job), time.perf_counter()))


def _step(job: Job, future: Future, t0: float, stages: Stages, writer, saves: deque, reporter, report) -> None:
    try:
        item = future.result()
        notes = stages.notes(item)
        result = stages.compute(job, item)
    except InputError as err:
        _record(FileResult(_name(job.src), _name(job.dst), "failed", err.reason, time.perf_counter() - t0), reporter, report)
        return
    saves.append((job, writer.submit(stages.save, job, result), t0, notes))


def _drain(saves: deque, reporter: Reporter, report: RunReport, keep: int) -> None:
    """Report finished writes; wait for the oldest while more than ``keep`` are queued."""
    while saves and (len(saves) > keep or saves[0][1].done()):
        job, future, t0, notes = saves.popleft()
        try:
            written = future.result()
            if isinstance(written, Saved):
                result = FileResult(_name(job.src), written.path, "done", "", time.perf_counter() - t0,
                                    notes + written.notes, written.extra)
            else:
                result = FileResult(_name(job.src), written, "done", "", time.perf_counter() - t0, notes)
        except InputError as err:
            result = FileResult(_name(job.src), _name(job.dst), "failed", err.reason, time.perf_counter() - t0)
        except OSError as err:
            reason = f"cannot write output ({err.strerror or err})"
            result = FileResult(_name(job.src), _name(job.dst), "failed", reason, time.perf_counter() - t0)
        _record(result, reporter, report)


def _record(result: FileResult, reporter: Reporter, report: RunReport) -> None:
    report.results.append(result)
    reporter.file(result)


def _name(path) -> str:
    return "-" if path is None else str(path)
