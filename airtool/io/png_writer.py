"""A PNG encoder that takes the picture a band of rows at a time (PNG spec, ISO/IEC 15948).

Pillow and pypng need the whole image as one array (Pillow copies it into its own 4-byte pixels
first); here each band is converted, filtered and fed to one zlib stream, so encoding adds a
band's worth of memory, whatever the image size. Each row gets the filter (None, Sub, Up,
Average, Paeth; spec section 9.2) with the smallest sum of absolute signed bytes, the heuristic
libpng and Pillow use, so files come out about as small as theirs.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # planes -> grey, grey+alpha, RGB, RGBA
BAND_ROWS = 128


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def write_png(
    fh: BinaryIO,
    size: tuple[int, int],
    planes: int,
    bit_depth: int,
    rows: Callable[[int, int], np.ndarray],
    icc: bytes | None = None,
    exif: bytes | None = None,
    level: int = 6,
) -> None:
    """Write a ``size`` = (width, height) PNG; ``rows(start, stop)`` gives those rows as an
    (n, width, planes) uint8 (bit_depth 8) or uint16 (16) array."""
    width, height = size
    fh.write(SIGNATURE)
    fh.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, _COLOUR_TYPE[planes], 0, 0, 0)))
    if icc:
        fh.write(chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if exif:
        fh.write(chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    stream = zlib.compressobj(level)
    bpp = planes * bit_depth // 8  # bytes per pixel: the distance the Sub/Average/Paeth filters look back
    previous = np.zeros(width * bpp, dtype=np.uint8)
    for start in range(0, height, BAND_ROWS):
        raw = _row_bytes(rows(start, min(start + BAND_ROWS, height)), bit_depth)
        data = stream.compress(filter_rows(raw, previous, bpp))
        previous = raw[-1]
        if data:
            fh.write(chunk(b"IDAT", data))
    fh.write(chunk(b"IDAT", stream.flush()))
    fh.write(chunk(b"IEND", b""))


def _row_bytes(band: np.ndarray, bit_depth: int) -> np.ndarray:
    """(n, W, planes) samples -> (n, W * bytes per pixel) bytes, 16-bit samples big-endian."""
    n = band.shape[0]
    if bit_depth == 16:
        return np.ascontiguousarray(band, dtype=">u2").view(np.uint8).reshape(n, -1)
    return np.ascontiguousarray(band, dtype=np.uint8).reshape(n, -1)


def filter_rows(raw: np.ndarray, previous: np.ndarray, bpp: int) -> bytes:
    """Filtered scanlines (a filter-type byte then the filtered row) for ``raw`` (n, L) bytes,
    ``previous`` being the row above the first (zeros for the image's first row)."""
    n, length = raw.shape
    up = np.concatenate([previous[None], raw[:-1]])
    left = np.zeros_like(raw)
    left[:, bpp:] = raw[:, :-bpp]
    upleft = np.zeros_like(raw)
    upleft[:, bpp:] = up[:, :-bpp]
    a, b, c = (v.astype(np.int16) for v in (left, up, upleft))
    candidates = np.stack([raw, raw - left, raw - up, raw - ((a + b) >> 1).astype(np.uint8), raw - _paeth(a, b, c)])
    cost = np.abs(candidates.view(np.int8).astype(np.int16)).sum(axis=2, dtype=np.int64)  # (5, n)
    choice = cost.argmin(axis=0)
    out = np.empty((n, length + 1), dtype=np.uint8)
    out[:, 0] = choice
    out[:, 1:] = candidates[choice, np.arange(n)]
    return out.tobytes()


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The Paeth predictor (spec section 9.4) of left ``a``, up ``b`` and upper-left ``c``."""
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c)).astype(np.uint8)
