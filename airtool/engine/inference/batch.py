"""The batch machinery shared by ``restore`` and ``degrade``.

Decoding runs ahead in worker threads, the device work runs in the calling thread, and encoding
plus the atomic write run in a writer thread, so the device does not wait on the disk. A bad
file becomes a failed ``FileResult`` and the batch goes on. Outputs that exist are skipped
(writes are atomic, so an existing output is complete), which is how an interrupted run resumes.

A video is one job: its frames stream through their own decode -> compute -> encode stages
inside ``compute`` (``airtool.engine.inference.video``), and its ``save`` reports the result as ``Saved``.

This module knows nothing of pictures or models: the commands' stages do (``restore_stages``, and
``api.degrade``), over the shared pieces of ``files`` (reading, atomic saving, what a killed run
left) and ``video_job``. ``shard`` splits a plan's jobs among torchrun ranks.
"""

from __future__ import annotations

import os
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
    whether a job's output already exists; ``describe`` turns compute's result into facts for
    the file's report (``--json``). Each file's report has the seconds of its own three stages
    (``decode_s``, ``<compute_name>_s``, ``write_s``: encoding and the atomic write) and their sum
    as ``seconds``, not the time it waited in the queues."""

    load: Callable[[Job], Any]
    compute: Callable[[Job, Any], Any]
    save: Callable[[Job, Any], str | Saved | None]
    is_done: Callable[[Job], bool]
    notes: Callable[[Any], list[str]] = lambda item: []
    describe: Callable[[Any], dict] = lambda result: {}
    compute_name: str = "compute"


def shard(jobs: list[Job]) -> list[Job]:
    """Under torchrun, each rank takes every WORLD_SIZE-th file, starting at its RANK, so ranks
    started on one batch share it without a word between them."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return jobs[rank::world] if world > 1 else jobs


def run_batch(
    plan: Plan, stages: Stages, reporter: Reporter, *, overwrite: bool = False, dry_run: bool = False,
    prefetch: int = 2, about: dict | None = None,
) -> RunReport:
    report = RunReport(about=dict(about or {}))
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
        loads: deque[tuple[Job, Future]] = deque()
        saves: deque[tuple[Job, Future, dict, dict, list[str]]] = deque()
        pending = iter(todo)
        try:
            _fill(loads, pending, decoders, stages, prefetch + 1)
            while loads:
                job, future = loads.popleft()
                _fill(loads, pending, decoders, stages, prefetch + 1)
                _step(job, future, stages, writer, saves, reporter, report)
                _drain(saves, reporter, report, keep=prefetch)
        except KeyboardInterrupt:
            for _, future in loads:
                future.cancel()
            _drain(saves, reporter, report, keep=0)  # finished work is kept
            raise
        _drain(saves, reporter, report, keep=0)


def _fill(loads: deque, pending, decoders: ThreadPoolExecutor, stages: Stages, depth: int) -> None:
    while len(loads) < depth:
        job = next(pending, None)
        if job is None:
            return
        loads.append((job, decoders.submit(_timed, stages.load, job)))


def _timed(fn: Callable, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


def _step(job: Job, future: Future, stages: Stages, writer, saves: deque, reporter, report) -> None:
    times: dict = {}
    try:
        item, times["decode_s"] = future.result()
        notes = stages.notes(item)
        result, times[f"{stages.compute_name}_s"] = _timed(stages.compute, job, item)
        facts = stages.describe(result)
    except InputError as err:
        _record(FileResult(_name(job.src), _name(job.dst), "failed", err.reason, sum(times.values())), reporter, report)
        return
    saves.append((job, writer.submit(_timed, stages.save, job, result), facts, times, notes))


def _drain(saves: deque, reporter: Reporter, report: RunReport, keep: int) -> None:
    """Report finished writes; wait for the oldest while more than ``keep`` are queued."""
    while saves and (len(saves) > keep or saves[0][1].done()):
        job, future, facts, times, notes = saves.popleft()
        try:
            written, times["write_s"] = future.result()
            stage_seconds = {k: round(v, 4) for k, v in times.items()}
            facts = {**facts, **stage_seconds}
            if isinstance(written, Saved):
                notes, facts, written = notes + written.notes, {**facts, **written.extra}, written.path
            result = FileResult(_name(job.src), written, "done", "", sum(times.values()), notes, facts)
        except InputError as err:
            result = FileResult(_name(job.src), _name(job.dst), "failed", err.reason, sum(times.values()))
        except OSError as err:
            reason = f"cannot write output ({err.strerror or err})"
            result = FileResult(_name(job.src), _name(job.dst), "failed", reason, sum(times.values()))
        _record(result, reporter, report)


def _record(result: FileResult, reporter: Reporter, report: RunReport) -> None:
    report.results.append(result)
    reporter.file(result)


def _name(path) -> str:
    return "-" if path is None else str(path)
