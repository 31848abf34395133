"""Fuzzing ``read_image``: random bytes and damaged valid images only ever give a Picture or
raise airtool's own ``InputError`` (never a decoder's exception), and every Picture it returns
can be written back. Deterministic (``derandomize``), so CI sees the same examples every run.
"""

from __future__ import annotations

import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from airtool.errors import InputError
from airtool.io.image import encode_image, read_image

MAX_PIXELS = 1 << 16  # damaged headers may claim any size; keep decoding cheap
FUZZ = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _valid_images() -> dict[str, bytes]:
    """Small valid files of every kind airtool reads, made here (no binary fixtures)."""
    import png
    import tifffile

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    out: dict[str, bytes] = {}

    def pil(name: str, im: Image.Image, fmt: str, **kw) -> None:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        out[name] = buf.getvalue()

    pil("png", rgb, "PNG")
    pil("png-palette-trns", rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8), "PNG", transparency=0)
    pil("png-la", rgb.convert("LA"), "PNG")
    pil("png-1bit", rgb.convert("1"), "PNG")
    pil("apng", rgb, "PNG", save_all=True, append_images=[rgb.rotate(90)])
    pil("jpeg", rgb, "JPEG", quality=90)
    pil("jpeg-progressive", rgb, "JPEG", progressive=True)
    pil("jpeg-cmyk", rgb.convert("CMYK"), "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6
    pil("jpeg-exif", rgb, "JPEG", exif=exif.tobytes())
    pil("tiff", rgb, "TIFF")
    pil("gif", rgb, "GIF", save_all=True, append_images=[rgb.rotate(180)])
    pil("webp", rgb, "WEBP")
    pil("bmp", rgb, "BMP")
    buf = io.BytesIO()
    png.Writer(10, 12, greyscale=False, alpha=True, bitdepth=16).write(
        buf, rng.integers(0, 65536, (12, 40), dtype=np.uint16))
    out["png16-rgba"] = buf.getvalue()
    for name, arr in (("tiff16", rng.integers(0, 65536, (12, 10, 3), dtype=np.uint16)),
                      ("tiff-float", rng.random((12, 10), dtype=np.float32))):
        buf = io.BytesIO()
        tifffile.imwrite(buf, arr, photometric="rgb" if arr.ndim == 3 else "minisblack")
        out[name] = buf.getvalue()
    return out


VALID = _valid_images()
SIGNATURES = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"BM"]

_flip = st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(0, 7))
_truncate = st.tuples(st.just("truncate"), st.integers(0, 1 << 20), st.just(0))
_insert = st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=16))
_overwrite = st.tuples(st.just("overwrite"), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=4))


def _mutate(data: bytes, mutations: list[tuple]) -> bytes:
    buf = bytearray(data)
    for kind, where, what in mutations:
        pos = where % max(len(buf), 1)
        if kind == "flip" and buf:
            buf[pos] ^= 1 << what
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = what
        elif kind == "overwrite":
            buf[pos : pos + len(what)] = what
    return bytes(buf)


def _picture_or_input_error(data: bytes) -> None:
    try:
        pic = read_image(data, "fuzz.png", max_pixels=MAX_PIXELS)
    except InputError as err:
        assert err.path == "fuzz.png" and err.reason
        return
    h, w, c = pic.pixels.shape
    assert 0 < h * w <= MAX_PIXELS and c in (1, 3) and pic.pixels.dtype == np.float32
    assert pic.bit_depth in (8, 16, 32)
    assert pic.alpha is None or pic.alpha.shape == (h, w)
    assert encode_image(pic, "TIFF" if pic.bit_depth == 32 else "PNG")  # what the batch does next


def test_every_valid_image_decodes():
    """The fuzzer's starting points are good files (else it would only test refusals)."""
    for name, data in VALID.items():
        assert read_image(data, name).pixels.size > 0, name


@FUZZ
@given(name=st.sampled_from(sorted(VALID)),
       mutations=st.lists(st.one_of(_flip, _truncate, _insert, _overwrite), min_size=1, max_size=4))
def test_damaged_images_give_a_picture_or_input_error(name, mutations):
    _picture_or_input_error(_mutate(VALID[name], mutations))


@FUZZ
@given(prefix=st.sampled_from([b"", *SIGNATURES]), body=st.binary(max_size=400))
def test_random_bytes_give_a_picture_or_input_error(prefix, body):
    _picture_or_input_error(prefix + body)
