"""One progress protocol for every API function: events.

An event is a plain dict with an ``"event"`` key naming what happened. Those that measure
progress carry ``done`` and ``total`` (``total`` None while unknown); training's own events keep
their names and count in ``step`` of ``steps`` (its ``start`` and ``plan`` events give
``steps``). The CLI turns events into rich bars on stderr; Python callers pass their own
callable, or ``progress=True`` for a ``tqdm.auto`` bar (a widget in notebooks, text elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airtool.report import FileResult, NullReporter, Reporter, RunReport

Event = dict[str, Any]
EventSink = Callable[[Event], None]


def progress_event(kind: str, done: int, total: int | None, **fields: Any) -> Event:
    return {"event": kind, "done": done, "total": total, **fields}


class TqdmBar:
    """An event sink drawing one ``tqdm.auto`` bar; ``close()`` when the work ends."""

    def __init__(self, desc: str) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(desc=desc, total=None, dynamic_ncols=True)

    def __call__(self, event: Event) -> None:
        if event.get("event") == "finish":  # restore and degrade: the batch's summary
            self.close()
            return
        total = event.get("total", event.get("steps")) if event.get("event") != "step" else None
        if total is not None and total != self.bar.total:
            self.bar.total = total
        done = event.get("done", event.get("step"))
        if done is not None and event.get("event") in ("step", "image", "file", "progress", "start", "resume"):
            self.bar.n = int(done)
            label = event.get("label") or event.get("name")
            if label:
                self.bar.set_postfix_str(str(label), refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class EventReporter(NullReporter):
    """A ``Reporter`` (restore, degrade) that speaks the event protocol: ``file`` events count
    the files, ``tiles`` and ``frames`` events the progress inside one."""

    def __init__(self, sink: EventSink) -> None:
        self.sink, self.total, self.done = sink, 0, 0

    def start(self, total: int) -> None:
        self.total = total
        self.sink(progress_event("start", 0, total))

    def tiles(self, name: str, done: int, total: int) -> None:
        self.sink({"event": "tiles", "name": name, "tiles_done": done, "tiles_total": total})

    def frames(self, name: str, done: int, total: int | None) -> None:
        self.sink({"event": "frames", "name": name, "frames_done": done, "frames_total": total})

    def file(self, result: FileResult) -> None:
        self.done += 1
        self.sink(progress_event("file", self.done, self.total, name=result.input, **result.to_json()))

    def message(self, text: str) -> None:
        self.sink({"event": "message", "text": text})

    def finish(self, report: RunReport) -> None:
        self.sink({"event": "finish", **report.summary()})


class Progress:
    """What an API function reports to: the caller's sink, a tqdm bar, both or neither."""

    def __init__(self, on_event: EventSink | None, progress: bool, desc: str) -> None:
        self.on_event = on_event
        self.bar = TqdmBar(desc) if progress else None

    def __call__(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)
        if self.bar is not None:
            self.bar(event)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def default_reporter(progress: bool, verb: str) -> Reporter:
    """The reporter of a batch call given none: silent, or with ``progress`` a tqdm bar over the files."""
    if not progress:
        return NullReporter()
    return EventReporter(TqdmBar(verb))
