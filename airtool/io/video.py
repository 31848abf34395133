"""Video files: recognise them by content, find the bundled ffmpeg, and probe a clip.

Video support is the optional ``video`` extra (``pip install 'airtool[video]'``): it installs
imageio-ffmpeg, whose wheel ships an ffmpeg binary, so nothing has to be installed by hand. Without
it a video input fails with one line saying what to install. ``IMAGEIO_FFMPEG_EXE`` (honoured by
imageio-ffmpeg) points at another ffmpeg.

Recognising a video needs no ffmpeg: the first bytes say whether a file is an ISO media / QuickTime
file (mp4, mov, m4v), Matroska (mkv, webm), AVI or an MPEG transport stream. Audio-only and
still-image members of those families (m4a, HEIF/AVIF) are not videos. ``probe`` then reads the
whole container once with ffmpeg (stream copy to the null muxer, no decoding), so a truncated or
damaged file is refused before any frame is restored, and parses ffmpeg's description of the
streams. ffmpeg's human-readable header is the only description the bundled binary gives (there is
no ffprobe in the wheel); exact time bases and frame rates come later from the decoder itself
(``airtool.io.frames``).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from airtool.errors import InputError

# Names that are always treated as videos (their content is still checked). Other names are
# recognised by content, except names of audio files, which are never opened.
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})
AUDIO_SUFFIXES = frozenset({".m4a", ".m4b", ".mka", ".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus", ".aac", ".weba"})
MUXER_BY_SUFFIX = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi", ".ts": "mpegts"}
INSTALL_HINT = "video support needs the video extra: pip install 'airtool[video]'"
SNIFF_BYTES = 512
# ISO media brands of still images (HEIF, AVIF, JPEG 2000) and audio-only files.
_NOT_VIDEO_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis",
                     b"jp2 ", b"jpx ", b"crx ", b"M4A ", b"M4B ", b"M4P "}
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


def container_of(head: bytes) -> str | None:
    """The container family of a file from its first bytes, or None when it is not a video."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return None if head[8:12] in _NOT_VIDEO_BRANDS else ("mov" if head[8:12] == b"qt  " else "mp4")
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS:
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"\x42\x82\x84webm" in head[:64] else "matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return "mpegts"
    return None


def sniff(path: Path) -> str | None:
    """``container_of`` a regular file's first bytes; None for anything that cannot be read
    (a FIFO or device is never opened: reading it could block)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as fh:
            return container_of(fh.read(SNIFF_BYTES))
    except (OSError, ValueError):
        return None


def is_video_candidate(path: Path) -> bool:
    """Whether a folder walk takes ``path`` as a video: a video name, or video content under
    another name (audio file names are never opened)."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return True
    return suffix not in AUDIO_SUFFIXES and sniff(path) is not None


def ffmpeg_exe(label: str) -> str:
    """The bundled ffmpeg binary; ``InputError(label, <what to install>)`` without the extra."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise InputError(label, f"is a video; {INSTALL_HINT}") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as err:  # the package without a binary for this platform, and none on PATH
        raise InputError(label, f"is a video, but no ffmpeg binary was found ({err}); set IMAGEIO_FFMPEG_EXE") from None


@dataclass(frozen=True)
class Colour:
    """Colour tags of the video stream as ffmpeg names them (None: not tagged)."""

    range: str | None = None  # "tv" (limited) or "pc" (full)
    space: str | None = None  # matrix, e.g. "bt709", "smpte170m", "bt2020nc"
    primaries: str | None = None
    trc: str | None = None


@dataclass(frozen=True)
class Stream:
    index: int
    kind: str  # "video", "audio", "subtitle", "data", "attachment"
    codec: str
    attached_pic: bool = False


@dataclass(frozen=True)
class VideoInfo:
    """What the container and its first video stream declare. ``rotation`` is the display
    rotation in degrees counter-clockwise (ffmpeg's display matrix), ``bitrate`` in bit/s."""

    path: Path
    container: str  # the muxer that writes this family: mp4, mov, matroska, webm, avi, mpegts
    codec: str
    pix_fmt: str
    width: int
    height: int
    fps: float | None
    duration: float | None
    start: float
    rotation: float
    bitrate: int | None  # of the video stream, or the container's less its audio
    colour: Colour
    streams: tuple[Stream, ...] = field(default_factory=tuple)
    tags: tuple[tuple[str, str], ...] = ()  # the video stream's language, title and handler name
    index: int = 0  # of the video stream in the file (a cover picture may come first)
    sar: str | None = None  # sample aspect ratio, e.g. "8:9" for anamorphic video; None when square

    @property
    def bit_depth(self) -> int:
        """8, or 16 for sources with more than 8 bits per sample (piped as 16-bit RGB)."""
        return 16 if re.search(r"(9|10|12|14|16)(le|be)?$|^p01[026]", self.pix_fmt) else 8

    @property
    def frames_estimate(self) -> int | None:
        return round(self.duration * self.fps) if self.duration and self.fps else None

    def count(self, kind: str) -> int:
        return sum(s.kind == kind for s in self.streams)


def probe(path: Path, label: str, max_pixels: int | None = None) -> VideoInfo:
    """Read the whole container once (no decoding) and describe it; any problem raises
    ``InputError(label, reason)``: not a video, no video stream, truncated or damaged data."""
    head = _head(path, label)
    family = container_of(head)
    if family is None:
        raise InputError(label, "not a video (no MP4, MOV, Matroska/WebM, AVI or MPEG-TS content)")
    cmd = [ffmpeg_exe(label), "-hide_banner", "-nostdin", "-nostats", "-v", "level+info", "-i", str(path),
           "-map", "0:v?", "-map", "0:a?", "-map", "0:s?", "-c", "copy", "-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True, timeout=None, check=False)
    if proc.returncode < 0:
        raise InputError(label, f"ffmpeg crashed reading it (signal {-proc.returncode})")
    text = proc.stderr.decode("utf-8", "replace")
    info = parse_header(text, path, family)
    errors = error_lines(text)
    if info is None or proc.returncode != 0 or errors:
        raise InputError(label, describe_failure(errors, info is None))
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise InputError(label, f"{info.width}x{info.height} frames exceed --max-pixels {max_pixels}")
    return info


def _head(path: Path, label: str) -> bytes:
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(label, "is a directory")
        if not stat.S_ISREG(mode):
            raise InputError(label, "not a regular file (a pipe, socket or device)")
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except PermissionError:
        raise InputError(label, "permission denied") from None
    except FileNotFoundError:
        reason = "broken symbolic link (its target is missing)" if os.path.islink(path) else "file not found"
        raise InputError(label, reason) from None
    except (OSError, ValueError) as err:
        raise InputError(label, f"cannot read ({getattr(err, 'strerror', None) or err})") from None
    if not head:
        raise InputError(label, "empty file")
    return head


def error_lines(text: str) -> list[str]:
    """ffmpeg's error and fatal messages (``-v level+...`` prefixes each line with its level)."""
    out = []
    for line in text.splitlines():
        match = re.search(r"\[(error|fatal)\] (.*)", line)
        if match and match.group(2).strip():
            out.append(match.group(2).strip())
    return out


def describe_failure(errors: list[str], no_header: bool) -> str:
    """One reason for a video ffmpeg could not read, from its first meaningful error."""
    joined = " ".join(errors).lower()
    if "matches no streams" in joined or (not errors and no_header):
        return "no video stream"
    if "moov atom not found" in joined:
        return "damaged or truncated video (no index: moov atom not found)"
    if "partial file" in joined or "ended prematurely" in joined or "truncat" in joined:
        return "truncated video (the file ends before its data does)"
    first = next((e for e in errors if not e.startswith(("Error opening", "Error parsing"))), errors[0] if errors else "")
    return f"damaged video ({first[:160]})" if first else "cannot read video"


_STREAM = re.compile(r"Stream #0:(\d+)(?:\[\w+\])?(?:\((\w+)\))?: (Video|Audio|Subtitle|Data|Attachment): (.*)$")
_TAG = re.compile(r"^\s{4,}(title|handler_name)\s*: (.*)$", re.IGNORECASE)
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees", re.IGNORECASE)


def parse_header(text: str, path: Path, family: str) -> VideoInfo | None:
    """``VideoInfo`` from ffmpeg's description of input #0, or None without a video stream."""
    lines = [re.sub(r"^(\[[^]]*\] )*", "", line) for line in text.splitlines()]
    try:
        lines = lines[next(i for i, ln in enumerate(lines) if ln.startswith("Input #0")):]
        lines = lines[: next((i for i, ln in enumerate(lines) if ln.startswith(("Stream mapping", "Output #"))), len(lines))]
    except StopIteration:
        return None
    duration, start, total = _duration_line(lines)
    streams, video, rotation, video_rate, tags = [], None, 0.0, None, {}
    in_video = False
    for line in lines:
        match = _STREAM.search(line)
        if match:
            index, language, kind, rest = int(match.group(1)), match.group(2), match.group(3).lower(), match.group(4)
            stream = Stream(index, kind, rest.split(",")[0].split(" ")[0], "(attached pic)" in rest)
            streams.append(stream)
            in_video = kind == "video" and video is None and not stream.attached_pic
            if in_video:
                video = _video_fields(rest)
                video["index"] = index
                video_rate = video.pop("bitrate")
                if language and language != "und":
                    tags["language"] = language
            continue
        rot, tag = _ROTATION.search(line), _TAG.match(line)
        if in_video and rot:
            rotation = float(rot.group(1))
        elif in_video and tag:
            tags[tag.group(1).lower()] = tag.group(2).strip()
    if video is None:
        return None
    audio_rates = [_kbps(ln) for ln in lines if ": Audio: " in ln]
    bitrate = video_rate or (total - sum(r or 0 for r in audio_rates) if total else None)
    return VideoInfo(path=path, container=family, duration=duration, start=start, rotation=rotation,
                     bitrate=bitrate if bitrate and bitrate > 0 else None, streams=tuple(streams),
                     tags=tuple(tags.items()), **video)


def _duration_line(lines: list[str]) -> tuple[float | None, float, int | None]:
    """(duration s, start s, container bit/s) from ``Duration: 00:00:02.00, start: 0.000000, bitrate: 95 kb/s``."""
    for line in lines:
        match = re.search(r"Duration: (?:(\d+):(\d+):([\d.]+)|N/A), start: (-?[\d.]+)(?:, bitrate: (\d+) kb/s)?", line)
        if match:
            h, m, s, start, kbps = match.groups()
            duration = int(h) * 3600 + int(m) * 60 + float(s) if s else None
            return duration, float(start), int(kbps) * 1000 if kbps else None
    return None, 0.0, None


def _video_fields(rest: str) -> dict:
    parts = _split_top(rest)
    codec = parts[0].split(" ")[0]
    pix = re.match(r"(\w+)(?:\((.*)\))?", parts[1]) if len(parts) > 1 else None
    size = next((re.match(r"(\d+)x(\d+)", p) for p in parts if re.match(r"\d+x\d+", p)), None)
    sar = re.search(r"SAR (\d+:\d+)", rest)
    rates = [re.fullmatch(r"([\d.]+)(k?) fps", p) for p in parts]
    fps = next((float(m.group(1)) * (1000 if m.group(2) else 1) for m in rates if m), None)
    return {
        "codec": codec,
        "pix_fmt": pix.group(1) if pix else "unknown",
        "colour": _colour(pix.group(2) if pix and pix.group(2) else ""),
        "width": int(size.group(1)) if size else 0,
        "height": int(size.group(2)) if size else 0,
        "fps": fps,
        "sar": sar.group(1) if sar and sar.group(1) not in ("1:1", "0:1") else None,
        "bitrate": next((int(p.split()[0]) * 1000 for p in parts if re.fullmatch(r"\d+ kb/s", p)), None),
    }


def _colour(text: str) -> Colour:
    """``tv, bt709/bt709/bt709, progressive`` or ``pc, bt709`` -> Colour (``unknown`` -> None)."""
    rng, spaces = None, [None, None, None]
    for item in (t.strip() for t in text.split(",")):
        if item in ("tv", "pc"):
            rng = item
        elif "/" in item:
            spaces = [None if v == "unknown" else v for v in item.split("/")][:3]
        elif item and item not in ("progressive", "unknown") and "first" not in item:
            spaces = [item, item, item]
    return Colour(rng, *spaces)


def _split_top(text: str) -> list[str]:
    """Split on ", " outside parentheses and brackets."""
    parts, depth, current = [], 0, ""
    for i, ch in enumerate(text):
        depth += ch in "(["
        depth -= ch in ")]"
        if ch == "," and depth == 0 and text[i + 1 : i + 2] == " ":
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    return [*parts, current.strip()] if current.strip() else parts


def _kbps(line: str) -> int | None:
    match = re.search(r"(\d+) kb/s", line)
    return int(match.group(1)) * 1000 if match else None
