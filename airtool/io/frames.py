"""ffmpeg processes that turn a video into raw frames and raw frames into a video.

- ``FrameReader`` decodes the first video stream to RGB (rgb24, or rgb48le for sources with more
  than 8 bits) in presentation order, one frame per decoded frame (``-fps_mode passthrough``: no
  frame is dropped or duplicated to fit a constant rate), in the orientation it is stored in
  (``-noautorotate``; the rotation stays metadata). The ``showinfo`` filter reports each frame's
  timestamp in the stream's exact time base.
- ``SegmentEncoder`` encodes frames into one segment file (NUT, which keeps any time base and
  holds any codec). Frames reach it as Matroska (``airtool.io.rawmkv``) so each keeps its own
  timestamp, and the encoder's time base is the source's, so timestamps round back exactly.
- ``mux`` joins the segments (concat demuxer, stream copy) and copies the source's audio,
  subtitle and attachment streams, metadata and chapters beside them, unchanged (``-c copy``).

Timestamps stay the file's own on both sides (``-copyts``): without it ffmpeg starts each input at
zero from its *used* streams, so a video whose audio starts before its first frame (MPEG-TS,
cameras) would come out with the audio shifted. A source that starts late (an MPEG-TS clock at
1.4 s) has every stream moved back by that start, as a plain ``ffmpeg -c copy`` remux does, keeping
their offsets to each other.

Every process logs with ``-v level+...``, so errors are told from information by their prefix;
an error while decoding means a damaged or truncated input and raises ``InputError``.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from airtool.errors import InputError, OutputError
from airtool.io import rawmkv
from airtool.io.video import VideoInfo, describe_failure, error_lines

_CONFIG = re.compile(r"config in time_base: (\d+)/(\d+), frame_rate: (\d+)/(\d+)")
_FRAME = re.compile(r"\bn:\s*(\d+)\s+pts:\s*(-?\d+|NOPTS)\b.*?duration:\s*(-?\d+|NOPTS)?")


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``pts``/``duration`` in the stream's time base, pixels (H, W, 3)
    uint8 or uint16 in stored orientation."""

    index: int
    pts: int
    duration: int
    pixels: np.ndarray


class FrameReader:
    """Iterate the frames of ``info``'s video from ``start_frame`` on (earlier frames are decoded
    and dropped inside ffmpeg, by index, so a resumed run starts exactly where it stopped)."""

    def __init__(self, ffmpeg: str, info: VideoInfo, label: str, start_frame: int = 0) -> None:
        self.info, self.label, self.start_frame = info, label, start_frame
        self.time_base: Fraction | None = None
        self.frame_rate: Fraction | None = None
        self._stamps: queue.Queue = queue.Queue()
        self._log: list[str] = []
        pix_fmt = "rgb24" if info.bit_depth == 8 else "rgb48le"
        filters = (f"trim=start_frame={start_frame}," if start_frame else "") + "showinfo=checksum=0"
        cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-v", "level+info", "-noautorotate", "-copyts",
               "-i", str(info.path), "-map", f"0:{info.index}", "-vf", filters, "-fps_mode", "passthrough",
               "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._thread = threading.Thread(target=self._read_log, name="airtool-ffmpeg-log", daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[Frame]:
        h, w = self.info.height, self.info.width
        dtype = np.uint8 if self.info.bit_depth == 8 else np.dtype("<u2")
        size = h * w * 3 * np.dtype(dtype).itemsize
        index = self.start_frame
        while True:
            data = self._read_exactly(size)
            if not data:
                break
            if len(data) < size:
                raise InputError(self.label, "truncated video (the decoder stopped inside a frame)")
            pts, duration = self._next_stamp()
            yield Frame(index, pts, duration, np.frombuffer(data, dtype).reshape(h, w, 3))
            index += 1
        self._finish()

    def stop(self) -> None:
        """Kill the decoder (an iteration in another thread then ends)."""
        if self._proc.poll() is None:
            self._proc.kill()

    def close(self) -> None:
        self.stop()
        self._proc.wait()
        self._proc.stdout.close()
        self._thread.join(timeout=5)

    def _read_exactly(self, size: int) -> bytes:
        chunks, got = [], 0
        while got < size:
            chunk = self._proc.stdout.read(size - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _next_stamp(self) -> tuple[int, int]:
        while True:
            try:
                return self._stamps.get(timeout=1.0)
            except queue.Empty:
                if not self._thread.is_alive() and self._stamps.empty():
                    raise InputError(self.label, "ffmpeg gave a frame without its timestamp") from None

    def _read_log(self) -> None:
        previous = None
        for raw in self._proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            config = _CONFIG.search(line)
            if config and self.time_base is None:
                num, den, rate_num, rate_den = (int(v) for v in config.groups())
                self.time_base = Fraction(num, den)
                self.frame_rate = Fraction(rate_num, rate_den) if rate_den else None
                continue
            match = _FRAME.search(line) if "showinfo" in line else None
            if match:
                pts = int(match.group(2)) if match.group(2) != "NOPTS" else (previous or 0)
                duration = int(match.group(3)) if match.group(3) not in (None, "NOPTS") else 0
                previous = pts + max(duration, 1)
                self._stamps.put((pts, duration))
            elif "[error]" in line or "[fatal]" in line:
                self._log.append(line)

    def _finish(self) -> None:
        code = self._proc.wait()
        self._thread.join(timeout=10)
        errors = error_lines("\n".join(self._log))
        if code != 0 or errors:
            raise InputError(self.label, describe_failure(errors, False))


@dataclass(frozen=True)
class EncodeSettings:
    """How segments are encoded: the ffmpeg encoder, the output pixel format and the arguments
    (quality, colour tags and the RGB -> YUV conversion) that follow the input."""

    encoder: str
    pix_fmt: str
    args: tuple[str, ...]
    notes: tuple[str, ...] = ()


class SegmentEncoder:
    """One encoder process writing ``path`` (NUT) from frames given with ``write``."""

    def __init__(self, ffmpeg: str, settings: EncodeSettings, info: VideoInfo, time_base: Fraction,
                 frame_rate: Fraction | None, origin: int, path: Path, label: str) -> None:
        self.time_base, self.origin, self.label = time_base, origin, label
        cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-v", "level+error", "-y",
               "-f", "matroska", "-i", "pipe:0", "-map", "0:v:0", "-map_metadata", "-1", "-fps_mode", "passthrough",
               "-enc_time_base", f"{time_base.numerator}/{time_base.denominator}",
               "-c:v", settings.encoder, *settings.args, "-f", "nut", str(path)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._errors: list[str] = []
        self._thread = threading.Thread(target=self._read_log, name="airtool-ffmpeg-enc-log", daemon=True)
        self._thread.start()
        frame_ns = round(10**9 / frame_rate) if frame_rate else 40_000_000
        self._send(rawmkv.header(info.width, info.height, info.bit_depth, frame_ns))

    def write(self, pts: int, pixels: np.ndarray) -> None:
        pts_ns = round(Fraction(pts - self.origin) * self.time_base * 10**9)
        self._send(rawmkv.frame(pts_ns, np.ascontiguousarray(pixels).tobytes()))

    def finish(self) -> None:
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        code = self._proc.wait()
        self._thread.join(timeout=10)
        if code != 0:
            raise self._failure()

    def abort(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._thread.join(timeout=5)

    def _send(self, data: bytes) -> None:
        try:
            self._proc.stdin.write(data)
        except BrokenPipeError:
            self._proc.wait()
            self._thread.join(timeout=10)
            raise self._failure() from None

    def _failure(self) -> OutputError:
        first = next((e for e in error_lines("\n".join(self._errors))), "ffmpeg exited with an error")
        return OutputError(self.label, f"cannot encode video ({first[:200]})")

    def _read_log(self) -> None:
        for raw in self._proc.stderr:
            self._errors.append(raw.decode("utf-8", "replace").rstrip())


@dataclass(frozen=True)
class Segment:
    """A finished segment file and the span of source time it covers (stream time base)."""

    path: Path
    first_pts: int
    end_pts: int  # the next segment's first timestamp, or the end of the last frame


def mux(ffmpeg: str, segments: list[Segment], info: VideoInfo, time_base: Fraction, muxer: str, dst: Path, label: str) -> None:
    """Write ``dst``: the segments' video, then the source's other streams, all stream-copied."""
    listing = segments[0].path.parent / "segments.ffconcat"
    lines = ["ffconcat version 1.0"]
    for seg in segments:
        lines += [f"file '{seg.path.name}'", f"duration {float((seg.end_pts - seg.first_pts) * time_base):.9f}"]
    listing.write_text("\n".join(lines) + "\n")
    video_in = ["-itsoffset", f"{float(segments[0].first_pts * time_base):.9f}"]
    if info.rotation:
        video_in += ["-display_rotation:v:0", f"{info.rotation:g}"]
    others = ["-map", "1:a?"]
    if muxer in ("mp4", "mov", "matroska", "webm"):
        others += ["-map", "1:s?"]
    if muxer == "matroska":
        others += ["-map", "1:t?"]
    container = ["-video_track_timescale", str(time_base.denominator)] if muxer in ("mp4", "mov") and time_base.numerator == 1 else []
    tags = [arg for key, value in info.tags for arg in ("-metadata:s:v:0", f"{key}={value}")]
    # A late start (MPEG-TS clocks) moves to zero as in a plain remux; an early one (audio priming) stays.
    start = ["-output_ts_offset", f"{-info.start:.6f}"] if info.start > 0 else []
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-v", "level+error", "-y", "-copyts",
           *video_in, "-f", "concat", "-safe", "0", "-i", str(listing), "-i", str(info.path),
           "-map", "0:v:0", *others, "-c", "copy", "-map_metadata", "1", *tags,
           "-map_chapters", "1", *container, *start, "-f", muxer, str(dst)]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if proc.returncode != 0:
        errors = error_lines(proc.stderr.decode("utf-8", "replace"))
        raise OutputError(label, f"cannot write video ({(errors[0] if errors else 'ffmpeg failed')[:200]})")
