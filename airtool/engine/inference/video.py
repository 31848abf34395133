"""One video through restore or degrade: frames stream decode -> transform -> encode, in segments.

Design. The frames are cut into segments of about ``--segment`` seconds (a whole
number of frames, fixed for the clip). Each segment is encoded into its own file in a hidden
folder beside the output, ``.<output name>.airtool-parts/``, written under a temporary name and
renamed when complete, with a small JSON record of the frames and timestamps it covers. When
every segment is there, they are joined with the source's audio and subtitle streams (stream
copy) into a temporary file beside the output, which is renamed to the output; then the folder
is removed. So:

- an output that exists is complete, and a killed run leaves no partial video a re-run would skip;
- a re-run resumes: it checks that the input and every setting that changes the result are those
  the kept segments were made with (``manifest.json``; otherwise it starts again), decodes from the
  first missing frame and restores only what is missing; a kill costs at most one segment of work;
- two runs on one video do not both work on it: the folder is locked, and the second run reports
  the video as failed (run again later) instead of racing the first.

Why segments rather than one long encode: an encoder killed mid-stream leaves a file that cannot be
continued, while finished segments can be joined by a stream copy. The price: each segment starts
with a key frame (a little more bit rate at each boundary), and resuming decodes (not restores) the
finished part again.

Memory: bounded queues of a few frames between the decoder thread, the caller's thread (the
transform: the model, or the degradation) and the encoder thread, whatever the video's length.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from airtool.errors import InputError, OutputError
from airtool.io.atomic import atomic_path, remove_stale_temps, write_bytes
from airtool.io.encode import settings_for
from airtool.io.frames import EncodeSettings, Frame, FrameReader, Segment, SegmentEncoder, mux
from airtool.io.video import MUXER_BY_SUFFIX, VideoInfo, ffmpeg_exe

PARTS_SUFFIX = ".airtool-parts"
QUEUE_FRAMES = 3  # frames waiting between two stages; bounds memory
Transform = Callable[[int, np.ndarray], np.ndarray]  # (frame index, float32 H x W x 3 in [0, 1]) -> same


@dataclass(frozen=True)
class VideoTask:
    """What to do with one video. ``recipe`` holds every setting that changes the result (model,
    weights, ops, seed...): kept segments are reused only under the same recipe and input."""

    info: VideoInfo
    dst: Path
    label: str
    transform: Transform
    recipe: dict[str, Any]
    codec: str | None = None
    crf: int | None = None
    pix_fmt: str | None = None
    segment_seconds: float = 10.0
    fresh: bool = False  # --overwrite: drop kept segments
    before_publish: Callable[[int], None] | None = None  # called with the frame count before the rename


@dataclass
class VideoOutcome:
    path: str
    frames: int
    frames_this_run: int
    resumed_from: int
    seconds: float
    frame_rate: str
    duration: float
    notes: list[str] = field(default_factory=list)

    def to_extra(self) -> dict[str, Any]:
        fps = self.frames_this_run / self.seconds if self.seconds > 0 else 0.0
        return {"kind": "video", "frames": self.frames, "fps": round(fps, 3), "frame_rate": self.frame_rate,
                "duration": round(self.duration, 6), "resumed_from": self.resumed_from}


def parts_dir(dst: Path) -> Path:
    return dst.parent / f".{dst.name}{PARTS_SUFFIX}"


def run_video(task: VideoTask, progress: Callable[[int, int | None], None] = lambda done, total: None) -> VideoOutcome:
    start = time.perf_counter()
    ffmpeg = ffmpeg_exe(task.label)
    settings = settings_for(ffmpeg, task.info, task.codec, task.crf, task.pix_fmt)
    parts = _Parts(parts_dir(task.dst), task, settings)
    notes = list(settings.notes) + _rotation_note(task.info)
    with _locked(parts.folder, task.label):
        notes += parts.open()
        kept = parts.records()
        resumed_from = sum(r["count"] for r in kept)
        try:
            if not (kept and kept[-1]["last"]):
                _stream(task, ffmpeg, settings, parts, resumed_from, progress)
            records = parts.records()
            if not records or not records[-1]["last"]:
                raise InputError(task.label, "no frames could be decoded")
        except InputError as err:
            if not isinstance(err, OutputError):  # a damaged input: its segments cannot be finished
                shutil.rmtree(parts.folder, ignore_errors=True)
            raise
        frames = sum(r["count"] for r in records)
        _publish(task, ffmpeg, records, frames)
        shutil.rmtree(parts.folder, ignore_errors=True)
    if resumed_from:
        notes.append(f"resumed at frame {resumed_from} ({len(kept)} segments kept)")
    tb = Fraction(records[0]["time_base"])
    duration = float((records[-1]["end_pts"] - records[0]["first_pts"]) * tb)
    rate = records[0]["frame_rate"]
    return VideoOutcome(str(task.dst), frames, frames - resumed_from, resumed_from, time.perf_counter() - start,
                        rate, duration, notes)


def clean_finished(dst: Path) -> None:
    """Remove the segment folder of a video whose output exists (a run killed between the final
    rename and the clean-up), unless a live run holds it."""
    folder = parts_dir(dst)
    if dst.is_file() and folder.is_dir():
        with contextlib.suppress(InputError, OSError), _locked(folder, str(dst)):
            shutil.rmtree(folder, ignore_errors=True)


def _publish(task: VideoTask, ffmpeg: str, records: list[dict], frames: int) -> None:
    tb = Fraction(records[0]["time_base"])
    folder = parts_dir(task.dst)
    segments = [Segment(folder / r["file"], r["first_pts"], r["end_pts"]) for r in records]
    muxer = MUXER_BY_SUFFIX.get(task.dst.suffix.lower(), task.info.container)
    with atomic_path(task.dst) as tmp:
        mux(ffmpeg, segments, task.info, tb, muxer, tmp, task.label)
        if task.before_publish is not None:
            task.before_publish(frames)


def _rotation_note(info: VideoInfo) -> list[str]:
    if info.rotation % 90:
        return [f"rotation {info.rotation:g} degrees is kept as metadata; frames were processed as stored"]
    return []


# --------------------------------------------------------------------------- the kept segments


class _Parts:
    """The segment folder: its manifest (input + settings) and the records of finished segments."""

    def __init__(self, folder: Path, task: VideoTask, settings: EncodeSettings) -> None:
        self.folder, self.task = folder, task
        stat = os.stat(task.info.path)
        fps = task.info.fps or 25.0
        self.segment_frames = max(1, round(task.segment_seconds * fps))
        self.manifest = {
            "airtool_parts": 1,
            "input": {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
            "recipe": task.recipe,
            "segment_frames": self.segment_frames,
            "encoder": [settings.encoder, settings.pix_fmt, *settings.args],
        }

    def open(self) -> list[str]:
        """Keep the segments if they were made from this input with these settings; notes."""
        remove_stale_temps(self.folder)
        path = self.folder / "manifest.json"
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if old == self.manifest and not self.task.fresh:
            return []
        had_segments = any(self.folder.glob("seg-*"))
        for item in self.folder.glob("seg-*"):
            item.unlink()
        write_bytes(path, json.dumps(self.manifest, indent=1).encode())
        if had_segments and not self.task.fresh:
            return ["kept segments were made from another input or with other settings: started again"]
        return []

    def records(self) -> list[dict]:
        """The finished segments, in order, up to the first gap (later ones are removed)."""
        out: list[dict] = []
        for index in range(10**6):
            record = self._record(index)
            if record is None:
                break
            out.append(record)
            if record["last"]:
                break
        for item in self.folder.glob("seg-*"):
            if int(item.name[4:10]) >= len(out):
                item.unlink()
        return out

    def _record(self, index: int) -> dict | None:
        try:
            record = json.loads((self.folder / f"seg-{index:06d}.json").read_text())
        except (OSError, ValueError):
            return None
        return record if (self.folder / record.get("file", "-")).is_file() else None

    def save(self, index: int, record: dict) -> None:
        write_bytes(self.folder / f"seg-{index:06d}.json", json.dumps(record).encode())

    def origin(self) -> int | None:
        first = self._record(0)
        return None if first is None else first["origin"]


@contextlib.contextmanager
def _locked(folder: Path, label: str) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(folder / "lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(label, "another airtool run is working on this video; run again when it has finished") from None
        yield


# --------------------------------------------------------------------------- the frame pipeline

_END = object()


def _stream(task: VideoTask, ffmpeg: str, settings: EncodeSettings, parts: _Parts, start: int,
            progress: Callable[[int, int | None], None]) -> None:
    """Decode from frame ``start`` on, transform each frame here, encode segments in a thread."""
    reader = FrameReader(ffmpeg, task.info, task.label, start)
    decoded: queue.Queue = queue.Queue(QUEUE_FRAMES)
    encoded: queue.Queue = queue.Queue(QUEUE_FRAMES)
    stop = threading.Event()
    writer = _SegmentWriter(ffmpeg, settings, task.info, parts, reader)
    threads = [threading.Thread(target=_decode, args=(reader, decoded, stop), name="airtool-video-decode", daemon=True),
               threading.Thread(target=writer.run, args=(encoded, stop), name="airtool-video-encode", daemon=True)]
    for thread in threads:
        thread.start()
    total = task.info.frames_estimate
    try:
        for frame in _items(decoded, stop):
            _put(encoded, (frame, _apply(task.transform, frame, task.info)), stop)
            progress(frame.index + 1, total)
        _put(encoded, _END, stop)
        threads[1].join()
    except _Stopped:
        pass  # the encoder thread failed: its error is raised below
    finally:
        stop.set()
        reader.stop()
        for thread in threads:
            thread.join(timeout=30)
        reader.close()
        writer.abort()
    if writer.error is not None and not isinstance(writer.error, _Stopped):
        raise writer.error


def _decode(reader: FrameReader, out: queue.Queue, stop: threading.Event) -> None:
    try:
        for frame in reader:
            _put(out, frame, stop)
        _put(out, _END, stop)
    except BaseException as err:  # handed to the consumer, which raises it
        with contextlib.suppress(_Stopped):
            _put(out, err, stop)


class _Stopped(Exception):
    pass


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            q.put(item, timeout=0.2)
            return
        except queue.Full:
            continue


def _items(q: queue.Queue, stop: threading.Event) -> Iterator[Any]:
    while True:
        try:
            item = q.get(timeout=0.2)
        except queue.Empty:
            if stop.is_set():
                raise _Stopped from None
            continue
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def _apply(transform: Transform, frame: Frame, info: VideoInfo) -> np.ndarray:
    """The transform on the frame as displayed (rotation applied, then undone), in float32."""
    scale = 255.0 if frame.pixels.dtype == np.uint8 else 65535.0
    turns = int(info.rotation // 90) % 4 if info.rotation % 90 == 0 else 0
    pixels = np.rot90(frame.pixels, turns) if turns else frame.pixels
    out = transform(frame.index, pixels.astype(np.float32) / np.float32(scale))
    out = np.rot90(out, -turns) if turns else out
    return np.clip(np.rint(out * scale), 0, scale).astype(frame.pixels.dtype)


class _SegmentWriter:
    """The encoder thread: opens a segment at every ``segment_frames``-th frame, closes the
    previous one once the next frame's timestamp (its end) is known, and the last at the end."""

    def __init__(self, ffmpeg: str, settings: EncodeSettings, info: VideoInfo, parts: _Parts, reader: FrameReader) -> None:
        self.ffmpeg, self.settings, self.info, self.parts, self.reader = ffmpeg, settings, info, parts, reader
        self.error: BaseException | None = None
        self._encoder: SegmentEncoder | None = None
        self._file: contextlib.AbstractContextManager | None = None
        self._record: dict = {}
        self._last: Frame | None = None

    def run(self, frames: queue.Queue, stop: threading.Event) -> None:
        """Encode until the end marker; on a failure, keep the error and stop the other stages."""
        try:
            for frame, pixels in _items(frames, stop):
                if self._encoder is None or frame.index % self.parts.segment_frames == 0:
                    if self._encoder is not None:
                        self._close(end_pts=frame.pts, last=False)
                    self._open(frame)
                self._encoder.write(frame.pts, pixels)
                self._record["count"] += 1
                self._last = frame
            if self._last is not None:
                self._close(end_pts=self._last.pts + max(self._last.duration, self._typical_duration()), last=True)
        except BaseException as err:  # raised again in the caller's thread
            self.error = err
            self.abort()
            stop.set()

    def _open(self, frame: Frame) -> None:
        index = frame.index // self.parts.segment_frames
        tb, rate = self.reader.time_base, self.reader.frame_rate
        origin = self.parts.origin() if frame.index else frame.pts
        name = f"seg-{index:06d}.nut"
        self._file = atomic_path(self.parts.folder / name)
        tmp = self._file.__enter__()
        self._encoder = SegmentEncoder(self.ffmpeg, self.settings, self.info, tb, rate, origin, tmp, str(self.info.path))
        self._record = {"file": name, "first": frame.index, "count": 0, "first_pts": frame.pts, "origin": origin,
                        "time_base": str(tb), "frame_rate": str(rate) if rate else "", "last": False}

    def _close(self, end_pts: int, last: bool) -> None:
        self._encoder.finish()
        self._encoder = None
        self._file.__exit__(None, None, None)  # fsync + rename: the segment file is complete
        self._file = None
        self._record.update(end_pts=end_pts, last=last)
        self.parts.save(self._record["first"] // self.parts.segment_frames, self._record)

    def _typical_duration(self) -> int:
        rate, tb = self.reader.frame_rate, self.reader.time_base
        return max(1, round(1 / (rate * tb))) if rate and tb else 1

    def abort(self) -> None:
        if self._encoder is not None:
            self._encoder.abort()
            self._encoder = None
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.__exit__(_Stopped, _Stopped(), None)  # removes the temporary file
            self._file = None
