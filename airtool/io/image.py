"""Read and write images without losing what makes them the user's picture.

Rules (stated here once, tested in tests/io/test_image.py):

- EXIF orientation is applied on read; EXIF is written back with orientation reset to 1.
- The ICC profile is carried through unchanged (CMYK profiles are dropped with the CMYK data).
- Alpha is split off on read and re-attached on write, untouched: only colour is restored.
- Grey images stay grey (1 channel); the network sees them replicated to RGB.
- 8-bit stays 8-bit, 16-bit stays 16-bit (16-bit PNG is read with pypng because Pillow reduces
  16-bit RGB to 8 bits; TIFF goes through tifffile), float TIFF stays float32.
- ``read_image(..., native=True)`` keeps 8/16-bit pixels as uint8/uint16 (a quarter or half of
  float32's memory); ``encode_image``/``write_image`` take either kind and convert band by band,
  and PNG is encoded band by band (``png_writer``), so no full-image float or float64 copy is made.
- Palette images become RGB, or RGBA when they have transparency. CMYK becomes RGB (through its
  ICC profile when it has one). 1-bit becomes 8-bit grey.
- Animated GIF/PNG/WebP: the first frame only is restored (the result says so).
- Headers claiming more than ``max_pixels`` are refused before decoding (decompression bombs).
- Only PNG, JPEG, TIFF, WebP, BMP and GIF content is decoded, whatever the file's name:
  other formats Pillow knows (EPS, PSD, TGA...) are refused, so a hostile file cannot reach them.
- PNG chunk checksums are verified (Pillow skips them for image data): a damaged file is refused.
- Only regular files are read (a FIFO or device named ``x.png`` would block or never end).
- Any failure to read or decode raises ``InputError``; nothing else escapes ``read_image``.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import struct
import warnings
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from airtool.errors import InputError, OutputError

# airtool does its own, configurable, decompression-bomb check (``max_pixels``).
Image.MAX_IMAGE_PIXELS = None
# tifffile logs warnings about damaged files; airtool reports each file in one line of its own.
logging.getLogger("tifffile").addHandler(logging.NullHandler())
# The formats whose content is decoded ("JPEG" also opens MPO, camera JPEGs with extra pictures).
DECODED_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP", "GIF")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_MAX_PIXELS = 16_000 * 16_000
FORMAT_BY_SUFFIX = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
    ".webp": "WEBP", ".bmp": "BMP", ".gif": "GIF",
}
SUFFIX_BY_FORMAT = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".png"}
_ORIENTATION_TAG = 0x0112


@dataclass
class Picture:
    """Decoded pixels plus everything needed to write them back faithfully.

    ``pixels``: float32 (H, W, C) in [0, 1], C = 1 (grey) or 3 (RGB), orientation applied; or,
    read with ``native=True``, uint8/uint16 levels for 8/16-bit pictures (float32 for 32-bit).
    ``alpha``: (H, W) array in the source's integer or float type, or None.
    ``bit_depth``: 8, 16 or 32 (float).
    """

    pixels: np.ndarray
    bit_depth: int = 8
    alpha: np.ndarray | None = None
    icc: bytes | None = None
    exif: bytes | None = None
    format: str = "PNG"
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    def with_pixels(self, pixels: np.ndarray) -> Picture:
        return replace(self, pixels=pixels)


def read_image(
    source: str | Path | bytes, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, native: bool = False
) -> Picture:
    """Decode a file path or bytes. Any problem raises ``InputError(name, reason)``.

    ``native``: keep 8/16-bit pixels as uint8/uint16 levels instead of float32 in [0, 1]."""
    label = name or (str(source) if not isinstance(source, bytes) else "<stdin>")
    box = [_read_bytes(source, label)]  # boxed, so _decode can let go of the file's bytes once decoded
    if not box[0]:
        raise InputError(label, "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _decode(box, label, max_pixels, native)
    except InputError:
        raise
    except Exception as err:  # damaged data makes Pillow, pypng and tifffile raise almost anything
        raise InputError(label, f"cannot decode image ({_short(err)})") from None


def _read_bytes(source: str | Path | bytes, label: str) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        mode = os.stat(source).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(label, "is a directory")
        if not stat.S_ISREG(mode):
            raise InputError(label, "not a regular file (a pipe, socket or device)")
        with open(source, "rb") as fh:
            return fh.read()
    except PermissionError:
        raise InputError(label, "permission denied") from None
    except FileNotFoundError:
        reason = "broken symbolic link (its target is missing)" if os.path.islink(source) else "file not found"
        raise InputError(label, reason) from None
    except (OSError, ValueError) as err:  # ValueError: a path with a NUL byte
        raise InputError(label, f"cannot read ({getattr(err, 'strerror', None) or err})") from None


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:160]


def _check_png_chunks(data: bytes, label: str) -> None:
    """Verify every chunk's CRC, as libpng does: Pillow does not check image data (IDAT) chunks."""
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            return  # truncated: the decoder says so
        if zlib.crc32(data[pos + 4 : end - 4]) != struct.unpack(">I", data[end - 4 : end])[0]:
            name = kind.decode("ascii") if kind.isalpha() else "a"
            raise InputError(label, f"damaged PNG: bad checksum (CRC) in {name} chunk")
        if kind == b"IEND":
            return
        pos = end


def _decode(box: list[bytes], label: str, max_pixels: int, native: bool = False) -> Picture:
    data = box.pop()
    if data.startswith(_PNG_SIGNATURE):
        _check_png_chunks(data, label)
    try:
        stream = io.BytesIO(data)
        im = Image.open(stream, formats=DECODED_FORMATS)
    except UnidentifiedImageError:
        raise InputError(label, "not a recognised image format") from None
    width, height = im.size
    if width * height > max_pixels:
        raise InputError(
            label, f"{width}x{height} pixels exceeds --max-pixels {max_pixels} (decompression-bomb guard); raise --max-pixels to allow it"
        )
    if width < 1 or height < 1:
        raise InputError(label, "image has no pixels")
    fmt = im.format or "PNG"
    notes = ["animated: first frame only"] if getattr(im, "is_animated", False) else []
    icc = im.info.get("icc_profile") or None
    exif = im.getexif()
    orientation = int(exif.get(_ORIENTATION_TAG, 1) or 1)
    if fmt == "PNG" and _png_bit_depth(data) == 16:
        pic = _decode_png16(data, native)
    elif fmt == "TIFF" and _tiff_needs_tifffile(im):
        pic = _decode_tiff(data, label, native)
    else:
        im.load()
        del data  # the decoder has read it: the file's bytes need not outlive this point,
        stream.close()  # nor the stream over them that Pillow keeps
        pic = _decode_pillow(im, native)
        if im.mode == "CMYK":
            icc = None  # the profile describes CMYK data that no longer exists
    pic.pixels = _orient(pic.pixels, orientation)
    if pic.alpha is not None:
        pic.alpha = _orient(pic.alpha, orientation)
    pic.icc, pic.format, pic.notes = icc, fmt, notes
    pic.exif = _exif_without_orientation(exif) if len(exif) else None
    return pic


def _decode_pillow(im: Image.Image, native: bool = False) -> Picture:
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode == "1":
        im = im.convert("L")
    elif mode == "CMYK":
        im = _cmyk_to_rgb(im)
    elif mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.clip(np.asarray(im, dtype=np.float64), 0, 65535)
        if native:
            return Picture(pixels=arr.astype(np.uint16)[..., None], bit_depth=16)
        return Picture(pixels=(arr / 65535.0).astype(np.float32)[..., None], bit_depth=16)
    elif mode == "F":
        return Picture(pixels=np.asarray(im, dtype=np.float32)[..., None].copy(), bit_depth=32)
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in mode else "RGB")
    return _split_alpha(_pillow_array(im), 8, native)


def _pillow_array(im: Image.Image) -> np.ndarray:
    """(H, W, C) uint8 copy of an 8-bit image, a band of rows at a time: ``np.asarray(im)`` goes
    through ``tobytes()``, which holds the pixels twice more while it joins its pieces."""
    width, height = im.size
    out = np.empty((height, width, len(im.getbands())), dtype=np.uint8)
    for top in range(0, height, 256):
        band = np.asarray(im.crop((0, top, width, min(top + 256, height))))
        out[top : top + 256] = band.reshape(band.shape[0], width, -1)
    return out


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    icc = im.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # a broken profile: fall back to the naive conversion below
            pass
    return im.convert("RGB")


def _split_alpha(arr: np.ndarray, bit_depth: int, native: bool = False) -> Picture:
    """(H, W, C) integer array -> Picture with colour in [0, 1] (or, ``native``, the levels as
    they are) and alpha kept as is."""
    scale = float((1 << bit_depth) - 1)
    alpha = None
    if arr.shape[2] in (2, 4):
        alpha, arr = arr[..., -1].copy(), arr[..., :-1]
    if native:
        return Picture(pixels=np.ascontiguousarray(arr), bit_depth=bit_depth, alpha=alpha)
    return Picture(pixels=(arr.astype(np.float32) / scale), bit_depth=bit_depth, alpha=alpha)


def _png_bit_depth(data: bytes) -> int:
    return data[24] if len(data) > 25 and data[12:16] == b"IHDR" else 8


def _decode_png16(data: bytes, native: bool = False) -> Picture:
    import png

    width, height, rows, info = png.Reader(bytes=data).asDirect()
    planes = info["planes"]
    arr = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, planes)
    return _split_alpha(arr, 16, native)


def _tiff_needs_tifffile(im: Image.Image) -> bool:
    bits = im.tag_v2.get(258, (8,)) if hasattr(im, "tag_v2") else (8,)
    bits = bits if isinstance(bits, tuple) else (bits,)
    return max(bits) > 8 or im.mode in ("F", "I", "I;16", "I;16B", "I;16L")


def _decode_tiff(data: bytes, label: str, native: bool = False) -> Picture:
    import tifffile

    arr = tifffile.imread(io.BytesIO(data), key=0)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # planar configuration
    if arr.ndim == 2:
        arr = arr[..., None]
    if np.issubdtype(arr.dtype, np.floating):
        alpha = arr[..., -1].copy() if arr.shape[2] in (2, 4) else None
        colour = arr[..., :-1] if alpha is not None else arr
        return Picture(pixels=colour.astype(np.float32), bit_depth=32, alpha=alpha)
    if arr.dtype == np.uint8:
        return _split_alpha(arr, 8, native)
    if arr.dtype != np.uint16:
        raise InputError(label, f"unsupported TIFF sample type {arr.dtype}")
    return _split_alpha(arr, 16, native)


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an (H, W[, C]) array, as ImageOps.exif_transpose does."""
    ops = {
        2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1, :],
        5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1], 8: lambda a: np.swapaxes(a, 0, 1)[::-1, :],
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(arr)) if op else arr


def _exif_without_orientation(exif: Image.Exif) -> bytes:
    if _ORIENTATION_TAG in exif:
        exif[_ORIENTATION_TAG] = 1
    return exif.tobytes()


# --------------------------------------------------------------------------- writing

_BAND_ROWS = 256  # rows converted at a time, so a conversion never copies the whole image


def encode_image(pic: Picture, fmt: str, quality: int = 95, label: str = "<output>") -> bytes:
    """Encode ``pic`` in ``fmt`` at the picture's bit depth where the format allows it."""
    buf = io.BytesIO()
    write_image(pic, fmt, buf, quality, label)
    return buf.getvalue()


def write_image(pic: Picture, fmt: str, fh: BinaryIO, quality: int = 95, label: str = "<output>") -> None:
    """Encode ``pic`` in ``fmt`` into the binary file ``fh``.

    PNG is encoded band by band from the pixels as they are. TIFF (tifffile), JPEG, WebP and
    BMP (Pillow) need the whole picture as one integer array: it is the pixels themselves when
    they are already in the output depth without alpha, else one integer copy. Pillow's JPEG
    encoder takes only a whole image, so it also holds its own copy (4 bytes per pixel).
    """
    fmt = fmt.upper()
    if fmt == "GIF":
        fmt = "PNG"
    check_encodable(pic, fmt, label)
    if fmt == "TIFF":
        _encode_tiff(pic, fh)
    elif fmt == "PNG":
        _encode_png(pic, fh)
    else:
        _encode_pillow(pic, fmt, quality, fh)


def _unit(arr: np.ndarray) -> np.ndarray:
    """Float values in [0, 1] of pixels (integer levels are divided as ``read_image`` divides them)."""
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    return arr


def check_encodable(pic: Picture, fmt: str, label: str = "<output>") -> None:
    """Raise ``OutputError`` when ``fmt`` cannot hold ``pic`` (checked before the costly work)."""
    if pic.alpha is not None and fmt.upper() in ("JPEG", "BMP"):
        raise OutputError(label, f"{fmt.upper()} cannot store the alpha channel; write PNG, TIFF or WebP instead (--format png)")


def _to_int(arr: np.ndarray, bit_depth: int) -> np.ndarray:
    """Integer levels of ``bit_depth``: unchanged when already so, else converted band by band."""
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    if arr.dtype == dtype:
        return arr
    scale = (1 << bit_depth) - 1
    out = np.empty(arr.shape, dtype)
    for start in range(0, arr.shape[0], _BAND_ROWS):
        rows = _unit(arr[start : start + _BAND_ROWS])
        out[start : start + _BAND_ROWS] = np.clip(np.rint(np.asarray(rows, dtype=np.float64) * scale), 0, scale)
    return out


def _stack(pic: Picture, bit_depth: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Rows ``start:stop`` of colour (+ alpha) as integers of ``bit_depth``."""
    colour = _to_int(pic.pixels[start:stop], bit_depth)
    if pic.alpha is None:
        return colour
    alpha = _to_int(pic.alpha[start:stop], bit_depth)
    return np.concatenate([colour, alpha[..., None]], axis=2)


def _encode_png(pic: Picture, fh: BinaryIO) -> None:
    from airtool.io.png_writer import write_png

    bit_depth = 16 if pic.bit_depth > 8 else 8
    height, width, channels = pic.pixels.shape
    planes = channels + (pic.alpha is not None)
    write_png(fh, (width, height), planes, bit_depth, lambda a, b: _stack(pic, bit_depth, a, b), pic.icc, pic.exif)


def _encode_pillow(pic: Picture, fmt: str, quality: int, fh: BinaryIO) -> None:
    arr = _stack(pic, 8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[arr.shape[2]]
    im = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr, mode)
    del arr
    options: dict = {}
    if pic.icc:
        options["icc_profile"] = pic.icc
    if pic.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["exif"] = pic.exif
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if fmt == "JPEG" and quality >= 90:
        options["subsampling"] = 0
    im.save(fh, fmt, **options)


def _encode_tiff(pic: Picture, fh: BinaryIO) -> None:
    import tifffile

    if pic.bit_depth == 32:
        arr = _unit(pic.pixels).astype(np.float32, copy=False)
        if pic.alpha is not None:
            arr = np.concatenate([arr, pic.alpha.astype(np.float32)[..., None]], axis=2)
    else:
        arr = _stack(pic, pic.bit_depth)
    if arr.shape[2] == 1:
        arr = arr[..., 0]
    extratags = [(34675, 7, len(pic.icc), pic.icc, True)] if pic.icc else []
    photometric = "minisblack" if arr.ndim == 2 or arr.shape[2] == 2 else "rgb"
    extrasamples = [2] if pic.alpha is not None else None  # 2 = unassociated alpha
    tifffile.imwrite(fh, arr, photometric=photometric, extrasamples=extrasamples, extratags=extratags, compression="zlib")
