"""Raw RGB frames with their own timestamps, as the smallest Matroska stream ffmpeg reads.

imageio's ffmpeg writer pipes raw frames at one constant frame rate, which would turn a
variable-frame-rate clip into a constant one. airtool instead pipes each frame to the encoder as
one Matroska cluster carrying that frame's timestamp, with a 1 ns timestamp scale, so any source
time base survives the trip (the encoder rounds back to the source ticks exactly).

Layout (Matroska spec, RFC 9559): EBML header, a Segment of unknown size (a live stream), Info,
one uncompressed video track (``V_UNCOMPRESSED``, the pixel layout named by its ColourSpace
FourCC, which ffmpeg maps to ``rgb24`` or ``rgb48le``), then one Cluster + SimpleBlock per frame.
"""

from __future__ import annotations

import struct

# ffmpeg's raw-video FourCCs (libavcodec/raw.c) for the two layouts airtool pipes.
FOURCC = {8: b"RGB\x18", 16: b"RGB0"}  # rgb24, rgb48le
_UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def header(width: int, height: int, bit_depth: int, frame_ns: int) -> bytes:
    """Everything before the first frame: ``frame_ns`` is the nominal frame duration (the
    demuxer derives the stream's frame rate from it; each frame's own timestamp still rules)."""
    ebml = _element(0x1A45DFA3, b"".join((
        _uint(0x4286, 1), _uint(0x42F7, 1), _uint(0x42F2, 4), _uint(0x42F3, 8),
        _element(0x4282, b"matroska"), _uint(0x4287, 4), _uint(0x4285, 2),
    )))
    info = _element(0x1549A966, _uint(0x2AD7B1, 1) + _element(0x4D80, b"airtool") + _element(0x5741, b"airtool"))
    video = _element(0xE0, _uint(0xB0, width) + _uint(0xBA, height) + _element(0x2EB524, FOURCC[bit_depth]))
    track = _element(0xAE, b"".join((
        _uint(0xD7, 1), _uint(0x73C5, 1), _uint(0x83, 1), _element(0x86, b"V_UNCOMPRESSED"),
        _uint(0x23E383, max(1, frame_ns)), video,
    )))
    segment = _id(0x18538067) + _UNKNOWN_SIZE
    return ebml + segment + info + _element(0x1654AE6B, track)


def frame(pts_ns: int, pixels: bytes) -> bytes:
    """One frame: a Cluster whose timestamp is the frame's (ns), holding one key SimpleBlock."""
    if pts_ns < 0:
        raise ValueError("Matroska cluster timestamps cannot be negative")
    block = b"\x81" + struct.pack(">hB", 0, 0x80) + pixels  # track 1, relative time 0, keyframe
    return _element(0x1F43B675, _uint(0xE7, pts_ns) + _element(0xA3, block))


def _id(element_id: int) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")


def _size(n: int) -> bytes:
    """EBML variable-length size: the shortest form (all-ones values are reserved for 'unknown')."""
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return (n | (1 << (7 * length))).to_bytes(length, "big")
    raise ValueError(f"element too large for EBML: {n} bytes")


def _element(element_id: int, payload: bytes) -> bytes:
    return _id(element_id) + _size(len(payload)) + payload


def _uint(element_id: int, value: int) -> bytes:
    return _element(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))
