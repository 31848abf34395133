"""Image I/O round trips: every case is made here, no binary fixtures."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from airtool.errors import InputError, OutputError
from airtool.io.image import Picture, encode_image, read_image


def _png_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **kw)
    return buf.getvalue()


def _rgb(h=20, w=30, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb8_roundtrip_is_lossless():
    arr = _rgb()
    pic = read_image(_png_bytes(Image.fromarray(arr)))
    assert pic.bit_depth == 8 and pic.pixels.shape == (20, 30, 3) and pic.alpha is None
    back = np.asarray(Image.open(io.BytesIO(encode_image(pic, "PNG"))))
    assert np.array_equal(back, arr)


def test_rgb16_png_keeps_16_bits():
    import png

    arr = np.random.default_rng(1).integers(0, 65536, (12, 9, 3), dtype=np.uint16)
    buf = io.BytesIO()
    png.Writer(9, 12, greyscale=False, bitdepth=16).write(buf, arr.reshape(12, 27))
    pic = read_image(buf.getvalue())
    assert pic.bit_depth == 16
    assert np.array_equal(np.rint(pic.pixels * 65535).astype(np.uint16), arr)
    out = encode_image(pic, "PNG")
    _, _, rows, info = png.Reader(bytes=out).asDirect()
    assert info["bitdepth"] == 16
    assert np.array_equal(np.vstack([np.asarray(r) for r in rows]).reshape(12, 9, 3), arr)


def test_grey16_png_stays_grey_16():
    arr = np.random.default_rng(2).integers(0, 65536, (10, 11), dtype=np.uint16)
    pic = read_image(_png_bytes(Image.fromarray(arr)))
    assert pic.pixels.shape == (10, 11, 1) and pic.bit_depth == 16
    back = read_image(encode_image(pic, "PNG"))
    assert np.array_equal(np.rint(back.pixels[..., 0] * 65535).astype(np.uint16), arr)


def test_grey_stays_grey():
    arr = _rgb()[..., 0]
    pic = read_image(_png_bytes(Image.fromarray(arr, "L")))
    assert pic.pixels.shape[2] == 1
    assert Image.open(io.BytesIO(encode_image(pic, "PNG"))).mode == "L"


def test_alpha_passes_through_untouched():
    rgba = np.dstack([_rgb(), np.arange(600, dtype=np.uint8).reshape(20, 30)])
    pic = read_image(_png_bytes(Image.fromarray(rgba, "RGBA")))
    assert pic.pixels.shape[2] == 3 and pic.alpha is not None
    pic = pic.with_pixels(1 - pic.pixels)  # "restore" the colour only
    back = np.asarray(Image.open(io.BytesIO(encode_image(pic, "PNG"))))
    assert np.array_equal(back[..., 3], rgba[..., 3])


def test_la_and_palette_with_transparency():
    la = Image.fromarray(np.dstack([_rgb()[..., 0], np.full((20, 30), 128, np.uint8)]), "LA")
    pic = read_image(_png_bytes(la))
    assert pic.pixels.shape[2] == 1 and pic.alpha is not None and int(pic.alpha[0, 0]) == 128
    pal = Image.fromarray(_rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    pic = read_image(_png_bytes(pal, transparency=0))
    assert pic.pixels.shape[2] == 3 and pic.alpha is not None


def test_exif_orientation_applied_and_reset():
    arr = _rgb(10, 20)
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    pic = read_image(buf.getvalue())
    assert pic.pixels.shape[:2] == (20, 10)
    out = Image.open(io.BytesIO(encode_image(pic, "JPEG")))
    assert out.size == (10, 20) and out.getexif().get(0x0112) == 1


def test_icc_profile_carried():
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    pic = read_image(_png_bytes(Image.fromarray(_rgb()), icc_profile=icc))
    assert pic.icc == icc
    for fmt in ("PNG", "JPEG", "TIFF"):
        assert Image.open(io.BytesIO(encode_image(pic, fmt))).info.get("icc_profile") == icc, fmt
    pic16 = Picture(pixels=pic.pixels, bit_depth=16, icc=icc)
    assert Image.open(io.BytesIO(encode_image(pic16, "PNG"))).info.get("icc_profile") == icc


def test_cmyk_becomes_rgb_and_one_bit_becomes_grey():
    cmyk = Image.fromarray(_rgb()).convert("CMYK")
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG")
    assert read_image(buf.getvalue()).pixels.shape[2] == 3
    bw = Image.fromarray(_rgb()[..., 0] > 128)
    pic = read_image(_png_bytes(bw.convert("1")))
    assert pic.pixels.shape[2] == 1 and set(np.unique(pic.pixels)) <= {0.0, 1.0}


def test_tiff_16bit_and_float():
    import tifffile

    arr16 = np.random.default_rng(3).integers(0, 65536, (8, 9, 3), dtype=np.uint16)
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr16, photometric="rgb")
    pic = read_image(buf.getvalue())
    assert pic.bit_depth == 16 and np.array_equal(np.rint(pic.pixels * 65535).astype(np.uint16), arr16)
    assert np.array_equal(tifffile.imread(io.BytesIO(encode_image(pic, "TIFF"))), arr16)
    arrf = np.random.default_rng(4).random((8, 9), dtype=np.float32)
    buf = io.BytesIO()
    tifffile.imwrite(buf, arrf)
    pic = read_image(buf.getvalue())
    assert pic.bit_depth == 32 and np.array_equal(pic.pixels[..., 0], arrf)
    assert tifffile.imread(io.BytesIO(encode_image(pic, "TIFF"))).dtype == np.float32


@pytest.mark.parametrize(
    "data, reason",
    [(b"", "empty file"), (b"hello, not an image", "not a recognised image format")],
)
def test_bad_bytes_raise_input_error(data, reason):
    with pytest.raises(InputError, match=reason):
        read_image(data, "x.png")


def test_truncated_png_raises_input_error():
    data = _png_bytes(Image.fromarray(_rgb(64, 64)))
    with pytest.raises(InputError, match="x.png"):
        read_image(data[: len(data) // 2], "x.png")


def test_decompression_bomb_refused_before_decoding():
    header = _png_bytes(Image.new("L", (1, 1)))
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    bomb = header[:8] + chunk + header[33:]
    with pytest.raises(InputError, match="max-pixels"):
        read_image(bomb, "bomb.png")


def test_alpha_cannot_go_to_jpeg():
    pic = Picture(pixels=np.zeros((4, 4, 3), np.float32), alpha=np.zeros((4, 4), np.uint8))
    with pytest.raises(OutputError, match="alpha"):
        encode_image(pic, "JPEG")


def test_animated_gif_first_frame_with_note():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    pic = read_image(buf.getvalue())
    assert pic.notes == ["animated: first frame only"]
    assert pic.pixels[0, 0, 0] > 0.9 and pic.pixels[0, 0, 1] < 0.1


# --------------------------------------------------------------------------- hostile and unusual files


def _jpeg_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _png_chunk_offset(data: bytes, kind: bytes) -> int:
    """Offset of the length field of the first ``kind`` chunk."""
    return data.index(kind) - 4


def test_truncated_jpeg_raises_input_error():
    data = _jpeg_bytes(Image.fromarray(_rgb(64, 64)))
    for cut in (len(data) // 2, 100, 3):
        with pytest.raises(InputError, match=r"^x\.jpg: "):
            read_image(data[:cut], "x.jpg")


@pytest.mark.parametrize("chunk", [b"IHDR", b"IDAT", b"IEND"])
def test_png_with_a_bad_crc_is_refused_naming_the_chunk(chunk):
    data = bytearray(_png_bytes(Image.fromarray(_rgb(32, 32))))
    start = _png_chunk_offset(bytes(data), chunk)
    length = int.from_bytes(data[start : start + 4], "big")
    data[start + 8 + length] ^= 0x01  # first byte of the CRC; the chunk data itself is intact
    with pytest.raises(InputError, match=f"bad checksum \\(CRC\\) in {chunk.decode()} chunk"):
        read_image(bytes(data), "x.png")


def test_content_decides_the_format_not_the_name(tmp_path):
    arr = _rgb(9, 7)
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(_png_bytes(Image.fromarray(arr)))
    pic = read_image(path)
    assert pic.format == "PNG" and np.array_equal(np.rint(pic.pixels * 255).astype(np.uint8), arr)


@pytest.mark.parametrize("fmt", ["TGA", "PPM", "PCX", "EPS"])
def test_formats_airtool_does_not_support_are_not_decoded(fmt):
    """Pillow knows many more formats (EPS even runs Ghostscript); a file named .png holding one
    of them is refused before any of that code runs."""
    if fmt == "EPS":
        data = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n%%EndComments\nshowpage\n"
    else:
        buf = io.BytesIO()
        Image.fromarray(_rgb(8, 8)).save(buf, fmt)
        data = buf.getvalue()
    with pytest.raises(InputError, match="not a recognised image format"):
        read_image(data, "x.png")


def test_apng_first_frame_with_note():
    frames = [Image.new("RGB", (8, 6), c) for c in ((0, 0, 255), (255, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:])
    pic = read_image(buf.getvalue())
    assert pic.notes == ["animated: first frame only"]
    assert pic.pixels.shape == (6, 8, 3) and pic.pixels[0, 0, 2] > 0.9 and pic.pixels[0, 0, 0] < 0.1


@pytest.mark.parametrize("shape", [(1, 1), (2000, 3), (3, 2000)])
def test_one_pixel_and_thin_strips_round_trip(shape):
    arr = _rgb(*shape, seed=5)
    pic = read_image(_png_bytes(Image.fromarray(arr)))
    assert pic.pixels.shape == (*shape, 3)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_image(pic, "PNG")))), arr)


def test_damaged_16bit_png_is_an_input_error_not_a_pypng_error():
    """pypng (used for 16-bit PNG) raises its own exception types; they must become InputError."""
    import png

    buf = io.BytesIO()
    png.Writer(6, 5, greyscale=False, bitdepth=16).write(buf, np.arange(90, dtype=np.uint16).reshape(5, 18) * 700)
    data = buf.getvalue()
    for damaged in (data[:-2], data[: _png_chunk_offset(data, b"IDAT") + 20]):
        with pytest.raises(InputError, match=r"^x\.png: cannot decode image"):
            read_image(damaged, "x.png")


def _read_in_thread(path, timeout=10.0):
    """read_image in a daemon thread, so a regression that blocks fails instead of hanging."""
    import threading

    outcome = {}

    def target():
        try:
            outcome["picture"] = read_image(path)
        except Exception as err:  # noqa: BLE001 - the test inspects it
            outcome["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"read_image({path}) blocked"
    return outcome


def test_fifo_directory_and_dangling_link_are_refused_without_blocking(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.png")  # opening a FIFO for reading blocks until a writer comes
    (tmp_path / "folder.png").mkdir()
    os.symlink(tmp_path / "missing.png", tmp_path / "dangling.png")
    expected = {"pipe.png": "not a regular file", "folder.png": "is a directory", "dangling.png": "broken symbolic link"}
    for name, reason in expected.items():
        outcome = _read_in_thread(tmp_path / name)
        assert isinstance(outcome.get("error"), InputError), (name, outcome)
        assert reason in outcome["error"].reason and outcome["error"].path.endswith(name)


def test_unreadable_file_permission_denied_in_process(tmp_path, monkeypatch):
    """Works as root too: the OS's answer for this one file is simulated by failing its open()."""
    import builtins
    import errno

    path = tmp_path / "secret.png"
    path.write_bytes(_png_bytes(Image.fromarray(_rgb())))
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)  # what pathlib calls
    with pytest.raises(InputError, match="secret.png: permission denied"):
        read_image(path)


def test_unreadable_file_permission_denied_for_real(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions (the in-process test covers this)")
    path = tmp_path / "secret.png"
    path.write_bytes(_png_bytes(Image.fromarray(_rgb())))
    path.chmod(0)
    try:
        with pytest.raises(InputError, match="secret.png: permission denied"):
            read_image(path)
    finally:
        path.chmod(0o644)


def test_a_path_with_a_nul_byte_is_an_input_error():
    with pytest.raises(InputError, match="embedded null byte"):
        read_image("bad\0name.png")
