"""Small videos made by the bundled ffmpeg for the video tests, and ffmpeg-side checks of the
results (frame timestamps, stream checksums, decoded pixels) that do not go through airtool.

Tests that need ffmpeg use the ``ffmpeg`` fixture (tests/conftest.py), which skips them cleanly
when the video extra is not installed.
"""

from __future__ import annotations

import re
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np


def make_video(ffmpeg: str, path: Path, seconds: float = 2.0, fps: str = "24", size: str = "64x48",
               audio: bool = True, codec: str = "libx264", pix_fmt: str = "yuv420p", vfr: bool = False,
               rotation: float = 0.0, still: bool = False, vf: str | None = None, extra: tuple[str, ...] = ()) -> Path:
    """A test-pattern clip (``testsrc2``, or one frozen frame with ``still``) with a 440 Hz sine
    audio track. ``vfr`` drops every fourth frame (so the timestamps are uneven); ``vf`` adds a filter."""
    source = f"testsrc2=size={size}:rate={fps}:duration={seconds}"
    cmd = [ffmpeg, "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", source]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    filters = ["select='not(eq(mod(n\\,4)\\,3))'"] if vfr else []
    if still:
        filters.append(f"trim=end_frame=1,loop=loop=-1:size=1,setpts=N/FRAME_RATE/TB,trim=duration={seconds}")
    if vf:
        filters.append(vf)
    if filters:
        cmd += ["-vf", ",".join(filters)]
    cmd += ["-fps_mode", "vfr" if vfr else "passthrough", "-c:v", codec, "-pix_fmt", pix_fmt]
    if audio:
        cmd += ["-c:a", "aac" if path.suffix in (".mp4", ".mov") else "libopus", "-shortest"]
    cmd += [*extra, str(path if not rotation else path.with_name("unrotated-" + path.name))]
    subprocess.run(cmd, check=True, capture_output=True)
    if rotation:
        tmp = path.with_name("unrotated-" + path.name)
        subprocess.run([ffmpeg, "-v", "error", "-y", "-display_rotation", f"{rotation:g}", "-i", str(tmp), "-c", "copy",
                        str(path)], check=True, capture_output=True)
        tmp.unlink()
    return path


def packets(ffmpeg: str, path: Path, stream: str) -> list[tuple[Fraction, str]]:
    """(presentation time in seconds, checksum) of every packet of one stream, by stream copy. The
    times are the file's own (``-copyts``), so a stream shifted against the others shows."""
    proc = subprocess.run([ffmpeg, "-v", "error", "-copyts", "-i", str(path), "-map", f"0:{stream}", "-c", "copy",
                           "-f", "framemd5", "-"], check=True, capture_output=True, text=True)
    tb, out = Fraction(1), []
    for line in proc.stdout.splitlines():
        if line.startswith("#tb 0:"):
            tb = Fraction(line.split(":", 1)[1].strip())
        elif line and not line.startswith("#"):
            fields = [f.strip() for f in line.split(",")]
            out.append((int(fields[2]) * tb, fields[5]))
    return out


def frame_times(ffmpeg: str, path: Path) -> list[Fraction]:
    """Presentation times of the video's frames, in order (from the packets: no decoding)."""
    return sorted(t for t, _ in packets(ffmpeg, path, "v:0"))


def decoded(ffmpeg: str, path: Path, width: int, height: int, autorotate: bool = False) -> np.ndarray:
    """All frames as (N, H, W, 3) uint8 RGB, in stored orientation unless ``autorotate``."""
    cmd = [ffmpeg, "-v", "error", *([] if autorotate else ["-noautorotate"]), "-i", str(path), "-map", "0:v:0",
           "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    data = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.frombuffer(data, np.uint8).reshape(-1, height, width, 3)


def header(ffmpeg: str, path: Path) -> str:
    """ffmpeg's description of the file (what ``ffmpeg -i`` prints)."""
    return subprocess.run([ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def rotation(ffmpeg: str, path: Path) -> float:
    match = re.search(r"rotation of (-?[\d.]+) degrees", header(ffmpeg, path), re.IGNORECASE)
    return float(match.group(1)) if match else 0.0
