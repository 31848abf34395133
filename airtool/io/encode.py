"""Choose how a restored video is encoded so that it follows its input.

- Codec: the encoder for the input's codec (h264 -> libx264, hevc -> libx265, vp9 -> libvpx-vp9,
  av1 -> libsvtav1, ...), or ``--codec`` (an ffmpeg encoder or codec name). Where the bundled
  ffmpeg can only decode the input's codec, h264 (VP9 for WebM) is written and the result says so.
- Pixel format: the input's, or ``--pix-fmt``; one the encoder cannot write falls back to the
  encoder's first format, with a note.
- Quality: without ``--crf``, the input video stream's bit rate (so the output is about as large,
  and a cleaner picture spends those bits on detail instead of noise); ``--crf`` asks for constant
  quality instead (``-crf`` for x264/x265/VPx/AV1, ``-q:v`` for the MPEG-family encoders).
  Lossless encoders (FFV1, PNG, ...) get neither.
- Colour: the input's range and colour tags are written again, and the RGB -> YUV conversion uses
  the input's matrix and range, so colours come back where they were (ffmpeg decoded with them).
  The sample aspect ratio of anamorphic video is kept too.
"""

from __future__ import annotations

import functools
import re
import subprocess

from airtool.errors import UsageError
from airtool.io.frames import EncodeSettings
from airtool.io.video import VideoInfo

# The encoder(s) for each codec, in order of preference (the first this ffmpeg has is used).
ENCODER_FOR: dict[str, str | tuple[str, ...]] = {
    "h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "vp8": "libvpx", "av1": ("libsvtav1", "libaom-av1", "librav1e"),
    "mpeg4": "mpeg4", "mpeg2video": "mpeg2video", "mpeg1video": "mpeg1video", "mjpeg": "mjpeg",
    "prores": "prores_ks", "ffv1": "ffv1", "huffyuv": "huffyuv", "ffvhuff": "ffvhuff", "utvideo": "utvideo",
    "png": "png", "rawvideo": "rawvideo", "qtrle": "qtrle", "theora": "libtheora", "msmpeg4v3": "msmpeg4",
    "msmpeg4v2": "msmpeg4v2", "wmv1": "wmv1", "wmv2": "wmv2", "h263": "h263", "magicyuv": "magicyuv",
    "dnxhd": "dnxhd", "dvvideo": "dvvideo", "cfhd": "cfhd", "vvc": "libvvenc",
}
CRF_ENCODERS = {"libx264", "libx264rgb", "libx265", "libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1"}
QSCALE_ENCODERS = {"mpeg4", "libxvid", "mpeg2video", "mpeg1video", "mjpeg", "msmpeg4", "msmpeg4v2", "wmv1", "wmv2", "h263", "h263p"}
LOSSLESS_ENCODERS = {"ffv1", "huffyuv", "ffvhuff", "utvideo", "png", "rawvideo", "qtrle", "magicyuv", "zlib", "zmbv"}
# ffmpeg colour-space names -> the scale filter's matrix names.
_MATRIX = {"bt709": "bt709", "smpte170m": "smpte170m", "bt470bg": "bt470", "fcc": "fcc", "smpte240m": "smpte240m",
           "bt2020nc": "bt2020", "bt2020c": "bt2020"}


def settings_for(ffmpeg: str, info: VideoInfo, codec: str | None = None, crf: int | None = None,
                 pix_fmt: str | None = None) -> EncodeSettings:
    notes: list[str] = []
    encoder = _encoder(ffmpeg, info, codec, notes)
    wanted = pix_fmt or info.pix_fmt
    formats = pixel_formats(ffmpeg, encoder)
    out_fmt = wanted if not formats or wanted in formats else formats[0]
    if out_fmt != wanted:
        notes.append(f"{encoder} cannot write pixel format {wanted}: wrote {out_fmt}")
    args = [*_quality(encoder, info, crf, notes), *_colour(info, out_fmt)]
    return EncodeSettings(encoder, out_fmt, tuple(args), tuple(notes))


def check_codec(ffmpeg: str, codec: str) -> None:
    """``UsageError`` unless ``--codec`` names an encoder (or a codec with one) in this ffmpeg."""
    if _available(ffmpeg, codec) is None:
        raise UsageError(f"--codec {codec!r}: the bundled ffmpeg has no such encoder (see 'ffmpeg -encoders')")


def _available(ffmpeg: str, codec: str) -> str | None:
    """The encoder this ffmpeg has for ``codec`` (an encoder name, or a codec name)."""
    found = encoders(ffmpeg)
    candidates = ENCODER_FOR.get(codec, ())
    for name in (codec, *((candidates,) if isinstance(candidates, str) else candidates)):
        if name in found:
            return name
    return None


def _encoder(ffmpeg: str, info: VideoInfo, codec: str | None, notes: list[str]) -> str:
    name = _available(ffmpeg, codec or info.codec)
    if name is not None:
        return name
    fallback = "libvpx-vp9" if info.container == "webm" else "libx264"
    notes.append(f"ffmpeg has no encoder for {info.codec}: wrote {fallback}")
    return fallback


def _quality(encoder: str, info: VideoInfo, crf: int | None, notes: list[str]) -> list[str]:
    if encoder in LOSSLESS_ENCODERS:
        if crf is not None:
            notes.append(f"--crf does not apply to {encoder} (lossless)")
        return []
    if crf is not None:
        if encoder in CRF_ENCODERS:
            return ["-crf", str(crf), *(["-b:v", "0"] if encoder in ("libvpx-vp9", "libaom-av1") else [])]
        if encoder in QSCALE_ENCODERS:
            return ["-q:v", str(min(max(crf, 1), 31))]
        notes.append(f"--crf does not apply to {encoder}: its default quality")
        return []
    if info.bitrate:
        return ["-b:v", str(info.bitrate)]
    notes.append(f"input bit rate unknown: {encoder}'s default quality")
    return []


def _colour(info: VideoInfo, out_fmt: str) -> list[str]:
    c = info.colour
    tags = []
    space = {"gbr": "rgb"}.get(c.space, c.space)  # ffmpeg prints the RGB matrix as "gbr", its option says "rgb"
    for flag, value in (("-color_range", c.range), ("-colorspace", space), ("-color_primaries", c.primaries),
                        ("-color_trc", c.trc)):
        if value:
            tags += [flag, value]
    sar = f"setsar={info.sar.replace(':', '/')}," if info.sar else ""  # anamorphic video keeps its shape
    if _is_rgb(out_fmt):
        return ["-vf", f"{sar}format={out_fmt}", *tags]
    full = c.range == "pc" or out_fmt.startswith("yuvj")
    scale = f"scale=out_range={'pc' if full else 'tv'}"
    if c.space in _MATRIX:
        scale += f":out_color_matrix={_MATRIX[c.space]}"
    return ["-vf", f"{sar}{scale},format={out_fmt}", *tags]


def _is_rgb(pix_fmt: str) -> bool:
    return bool(re.match(r"(gbr|rgb|bgr|argb|abgr|0rgb|0bgr|pal8|gray|ya|monow|monob)", pix_fmt))


@functools.cache
def encoders(ffmpeg: str) -> frozenset[str]:
    text = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, check=False).stdout
    return frozenset(m.group(1) for m in re.finditer(r"^ V\S* (\S+)", text, re.MULTILINE))


@functools.cache
def pixel_formats(ffmpeg: str, encoder: str) -> tuple[str, ...]:
    text = subprocess.run([ffmpeg, "-hide_banner", "-h", f"encoder={encoder}"], capture_output=True, text=True,
                          check=False).stdout
    match = re.search(r"Supported pixel formats: (.*)", text)
    return tuple(match.group(1).split()) if match else ()
