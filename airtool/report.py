"""Results of a batch and how they are shown: rich on stderr for people, NDJSON for machines."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from typing import IO, Protocol


@dataclass
class FileResult:
    input: str
    output: str | None
    status: str  # "done", "skipped", "failed", "planned"
    reason: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        data = asdict(self)
        extra = data.pop("extra")
        data.update(extra)
        return data


@dataclass
class RunReport:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    # What did the work, for the summary: model, weights, sha256, the tasks they were trained on.
    about: dict = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 3 if self.failed else 0

    def summary(self) -> dict:
        done = self.count("done")
        return {
            "summary": True,
            "done": done,
            "skipped": self.count("skipped"),
            "failed": len(self.failed),
            "planned": self.count("planned"),
            "seconds": round(self.seconds, 3),
            "images_per_second": round(done / self.seconds, 3) if self.seconds > 0 and done else 0.0,
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
            **self.about,
            "untrained_seen": self.untrained_seen(),
            "untrained_kept": sum(r.extra.get("untrained") == "kept" for r in self.results),
        }

    def untrained_seen(self) -> dict[str, int]:
        """Task -> pictures that looked like it, among the tasks the weights were not trained for."""
        seen: dict[str, int] = {}
        for r in self.results:
            for task in r.extra.get("untrained_signs", []):
                seen[task] = seen.get(task, 0) + 1
        return seen


class Reporter(Protocol):
    def start(self, total: int) -> None: ...
    def tiles(self, name: str, done: int, total: int) -> None: ...
    def file(self, result: FileResult) -> None: ...
    def frames(self, name: str, done: int, total: int | None) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self, report: RunReport) -> None: ...


class NullReporter:
    def start(self, total: int) -> None:
        pass

    def tiles(self, name: str, done: int, total: int) -> None:
        """Progress inside one image: ``done`` of its ``total`` tiles (0 when it starts)."""

    def file(self, result: FileResult) -> None:
        pass

    def frames(self, name: str, done: int, total: int | None) -> None:
        """Progress inside one video: ``done`` frames of about ``total``."""

    def message(self, text: str) -> None:
        pass

    def finish(self, report: RunReport) -> None:
        pass


class JsonReporter(NullReporter):
    """One JSON object per file on stdout, then a summary object."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def file(self, result: FileResult) -> None:
        self.stream.write(json.dumps(result.to_json()) + "\n")
        self.stream.flush()

    def finish(self, report: RunReport) -> None:
        self.stream.write(json.dumps(report.summary()) + "\n")
        self.stream.flush()


class ConsoleReporter(NullReporter):
    """Human output on stderr: a progress bar when stderr is a terminal, failures always."""

    def __init__(self, quiet: bool = False, verb: str = "restored") -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.quiet = quiet
        self.verb = verb
        self.progress = None
        self.task = None
        self.frame_task = None
        self.tile_task = None

    def start(self, total: int) -> None:
        if self.quiet or not self.console.is_terminal or total < 1:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=self.console, transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task(self.verb, total=total)

    def frames(self, name: str, done: int, total: int | None) -> None:
        """A second bar for the video in progress: frames done, of about how many, and the ETA."""
        if self.progress is None:
            return
        if self.frame_task is None:
            self.frame_task = self.progress.add_task(f"  {_escape(name)} (frames)", total=total)
        self.progress.update(self.frame_task, completed=done, total=max(total or 0, done) or None)

    def tiles(self, name: str, done: int, total: int) -> None:
        """A second bar for the image in progress, counted in tiles, with its own ETA."""
        if self.progress is None:
            return
        if self.tile_task is None:
            self.tile_task = self.progress.add_task("", total=total)
        if done == 0:  # a new image: restart the count and the rate behind the ETA
            self.progress.reset(self.tile_task, total=total, description=f"  {_escape(name)} (tiles)")
        self.progress.update(self.tile_task, completed=done)

    def file(self, result: FileResult) -> None:
        if self.frame_task is not None:
            self.progress.remove_task(self.frame_task)
            self.frame_task = None
        if result.status == "failed":
            self.console.print(f"[red]failed[/red] {_escape(result.input)}: {_escape(result.reason)}")
        elif not self.quiet and result.notes:
            self.console.print(f"note {_escape(result.input)}: {_escape('; '.join(result.notes))}")
        if self.progress is not None:
            self.progress.advance(self.task)

    def message(self, text: str) -> None:
        if not self.quiet:
            self.console.print(_escape(text))

    def finish(self, report: RunReport) -> None:
        if self.progress is not None:
            self.progress.stop()
        s = report.summary()
        if self.quiet and not report.failed and not report.interrupted:
            return
        line = f"{s['done']} {self.verb}, {s['skipped']} skipped (already done), {s['failed']} failed in {s['seconds']:.1f} s"
        if s["planned"]:
            line = f"{s['planned']} to do, {s['skipped']} already done (dry run)"
        if report.interrupted:
            line += " (interrupted; run again to resume)"
        if report.about.get("model"):
            line += f" with {_escape(describe_model(report.about))}"
        self.console.print(line + _escape(describe_untrained(s["untrained_seen"], s["untrained_kept"])))


def describe_model(about: dict) -> str:
    """'daair (weights daair-aio3.safetensors: trained for noise, rain, haze)'. What they were not
    trained for is said only where a picture looked like it (``describe_untrained``)."""
    if not about.get("weights"):
        return f"{about['model']} (no weights)"
    coverage = f"trained for {', '.join(about['tasks'])}" if about.get("tasks") else "tasks not recorded"
    return f"{about['model']} (weights {about['weights']}: {coverage})"


def describe_untrained(seen: dict[str, int], kept: int) -> str:
    """'; 3 pictures looked like lowlight and 1 like blur, which these weights were not trained
    for: 4 kept unchanged (--untrained restore restores them)', or '' when none did."""
    if not seen:
        return ""
    counts = [f"{n} picture{'s' if n != 1 else ''} looked like {task}" if i == 0 else f"{n} like {task}"
              for i, (task, n) in enumerate(seen.items())]
    what = counts[0] if len(counts) == 1 else f"{', '.join(counts[:-1])} and {counts[-1]}"
    done = f"{kept} kept unchanged (--untrained restore restores them)" if kept else "restored anyway"
    return f"; {what}, which these weights were not trained for: {done}"


class MultiReporter(NullReporter):
    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = reporters

    def start(self, total: int) -> None:
        for r in self.reporters:
            r.start(total)

    def tiles(self, name: str, done: int, total: int) -> None:
        for r in self.reporters:
            r.tiles(name, done, total)

    def file(self, result: FileResult) -> None:
        for r in self.reporters:
            r.file(result)

    def frames(self, name: str, done: int, total: int | None) -> None:
        for r in self.reporters:
            r.frames(name, done, total)

    def message(self, text: str) -> None:
        for r in self.reporters:
            r.message(text)

    def finish(self, report: RunReport) -> None:
        for r in self.reporters:
            r.finish(report)


RANK_ERRORS_ENV = "AIRTOOL_RANK_ERRORS"


def print_error(line: str) -> None:
    """Write an error line to stderr; in a rank that ``train.cpu_ranks`` launched, into the
    launcher's folder instead (``RANK_ERRORS_ENV``): ranks fail alike on one config, and the
    launcher prints each distinct line once (``engine/training/cpu_ranks.py``)."""
    import os

    folder, rank = os.environ.get(RANK_ERRORS_ENV), os.environ.get("RANK")
    if folder and rank is not None:
        try:
            with open(os.path.join(folder, f"rank-{int(rank):05d}.txt"), "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            return
        except (OSError, ValueError):
            pass  # the folder is gone: say it here
    print(line, file=sys.stderr, flush=True)


def one_line(text: str) -> str:
    """``text`` safe to print as one line: control characters (newline, carriage return, escape
    sequences...) are written as Python escapes, and undecodable bytes of a file name as ``\\xNN``."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by os.fsdecode (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return repr(ch)[1:-1]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(one_line(text))
