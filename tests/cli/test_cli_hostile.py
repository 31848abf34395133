"""Bad, unusual and hostile inputs through the real CLI, every file made here.

The all-in-one batch mixes every bad file with good and unusual-but-valid ones: each bad file
gets exactly one stderr line naming it and the reason, every good file is written faithfully,
and the exit status is 3. The identity model makes "faithfully" checkable pixel for pixel.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from airtool.cli import app
from airtool.io.atomic import TMP_MARK
from airtool.io.provenance import FILE_NAME as PROVENANCE

ROOT = Path(__file__).resolve().parents[2]  # the repository: subprocesses import this airtool
runner = CliRunner()
IDENTITY = ["--model", "identity", "--device", "cpu"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _encoded(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _bomb_png() -> bytes:
    """A valid PNG whose header claims 100000 x 100000 pixels (10^10; 30 GB decoded)."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    one = _encoded(Image.new("L", (1, 1)), "PNG")
    return one[:8] + chunk + one[33:]


def _bad_crc_png() -> bytes:
    data = bytearray(_encoded(Image.fromarray(_rgb(16, 16, 9)), "PNG"))
    start = data.index(b"IDAT") - 4
    data[start + 8 + int.from_bytes(data[start : start + 4], "big")] ^= 0x01
    return bytes(data)


def _guard_open(monkeypatch, path: Path) -> None:
    """As root, permissions do not stop reads: make the OS answer EACCES for this one file."""
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(io, "open", guarded)


def _escaped(name: str) -> str:
    from airtool.report import one_line

    return one_line(name)


def _failure_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("failed ")]


# --------------------------------------------------------------------------- the all-in-one batch

BAD = {  # input (relative) -> reason that must appear on its one line
    "empty.png": "empty file",
    "truncated.png": "truncated",
    "truncated.jpg": "truncated",
    "text.png": "not a recognised image format",
    "badcrc.png": "bad checksum (CRC) in IDAT chunk",
    "targa.png": "not a recognised image format",
    "bomb.png": "exceeds --max-pixels",
    "unreadable.png": "permission denied",
    "fifo.png": "not a regular file",
    "sub/dangling.png": "broken symbolic link",
    "sub/loop": "symbolic link loop",
    "sub/broken\nname.png": "not a recognised image format",
    "occupied.png": "cannot write output (Is a directory)",  # out/occupied.png is a folder
}


@pytest.fixture
def hostile(tmp_path, monkeypatch) -> tuple[Path, dict]:
    """Every bad and unusual file in one tree; returns (folder, expected pixels)."""
    import png
    import tifffile

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    w: dict[str, bytes] = {}
    expect: dict[str, object] = {}
    # good and unusual-but-valid files, with what the output must hold
    good = _rgb(24, 32, 0)
    w["good.png"] = _encoded(Image.fromarray(good), "PNG")
    expect["good.png"] = good
    w["good.jpg"] = _encoded(Image.fromarray(good), "JPEG", quality=95)
    w["png_inside.jpg"] = _encoded(Image.fromarray(_rgb(10, 12, 1)), "PNG")  # a "JPEG" that is a PNG
    w["cmyk.jpg"] = _encoded(Image.fromarray(good).convert("CMYK"), "JPEG")
    pal = Image.fromarray(good).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    w["palette_trns.png"] = _encoded(pal, "PNG", transparency=0)
    expect["palette_trns.png"] = np.asarray(Image.open(io.BytesIO(w["palette_trns.png"])).convert("RGBA"))
    la = np.dstack([good[..., 0], good[..., 1]])
    w["la.png"] = _encoded(Image.fromarray(la, "LA"), "PNG")
    expect["la.png"] = la
    bits = good[..., 0] > 128
    w["onebit.png"] = _encoded(Image.fromarray(bits).convert("1"), "PNG")
    expect["onebit.png"] = bits.astype(np.uint8) * 255
    rgb16 = np.random.default_rng(2).integers(0, 65536, (12, 9, 3), dtype=np.uint16)
    buf = io.BytesIO()
    png.Writer(9, 12, greyscale=False, bitdepth=16).write(buf, rgb16.reshape(12, 27))
    w["rgb16.png"] = buf.getvalue()
    expect["rgb16.png"] = rgb16
    for name, arr, kw in (("rgb16.tif", rgb16, {"photometric": "rgb"}),
                          ("float.tif", np.random.default_rng(3).random((7, 5), dtype=np.float32), {})):
        buf = io.BytesIO()
        tifffile.imwrite(buf, arr, **kw)
        w[name] = buf.getvalue()
        expect[name] = arr
    for name, shape in (("one.png", (1, 1)), ("strip.png", (2000, 3))):
        arr = _rgb(*shape, 4)
        w[name] = _encoded(Image.fromarray(arr), "PNG")
        expect[name] = arr
    frames = [Image.fromarray(_rgb(8, 8, s)) for s in (5, 6)]
    w["anim.gif"] = _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    expect["anim.png"] = np.asarray(Image.open(io.BytesIO(w["anim.gif"])).convert("RGB"))  # first frame
    w["apng.png"] = _encoded(frames[0], "PNG", save_all=True, append_images=frames[1:])
    expect["apng.png"] = np.asarray(frames[0])
    for name in ("sub/with space é ü 日本.png", "sub/new\nline.png", os.fsdecode(b"sub/bad\xff\xfe.png")):
        arr = _rgb(6, 7, len(name))
        w[name] = _encoded(Image.fromarray(arr), "PNG")
        expect[name] = arr
    w["occupied.png"] = w["good.png"]
    # bad files
    truncated_png = _encoded(Image.fromarray(_rgb(64, 64, 7)), "PNG")
    truncated_jpg = _encoded(Image.fromarray(_rgb(64, 64, 8)), "JPEG")
    w.update({
        "empty.png": b"", "truncated.png": truncated_png[: len(truncated_png) // 2],
        "truncated.jpg": truncated_jpg[: len(truncated_jpg) // 2], "text.png": b"just some text\n",
        "badcrc.png": _bad_crc_png(), "targa.png": _encoded(Image.fromarray(good), "TGA"),
        "bomb.png": _bomb_png(), "unreadable.png": w["good.png"], "sub/broken\nname.png": b"not an image",
    })
    for name, data in w.items():
        (src / name).write_bytes(data)
    os.mkfifo(src / "fifo.png")
    unblock = threading.Timer(20, _release_fifo_reader, [src / "fifo.png"])  # a regression fails, never hangs
    unblock.start()
    os.symlink(src / "nowhere.png", src / "sub" / "dangling.png")
    os.symlink(src, src / "sub" / "loop")
    (src / "unreadable.png").chmod(0)
    if os.geteuid() == 0:
        _guard_open(monkeypatch, src / "unreadable.png")
    (tmp_path / "out" / "occupied.png").mkdir(parents=True)
    yield src, expect
    unblock.cancel()
    (src / "unreadable.png").chmod(0o644)


def _release_fifo_reader(fifo: Path) -> None:
    """Open the FIFO for writing and close it, so a reader blocked in open() gets end-of-file."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # no reader waiting: nothing to release
        pass


def _read_png16(path: Path) -> np.ndarray:
    import png

    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    assert info["bitdepth"] == 16
    return np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(height, width, info["planes"])


def test_all_bad_files_at_once_one_line_each_and_every_good_file_written(hostile, tmp_path):
    import tifffile

    src, expect = hostile
    out = tmp_path / "out"
    result = runner.invoke(app, ["restore", str(src), str(out), "-r", *IDENTITY, "--json"])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.stderr

    # one line per bad file, naming it (control characters escaped) with its reason
    lines = _failure_lines(result.stderr)
    assert len(lines) == len(BAD), "\n".join(lines)
    for rel, reason in BAD.items():
        mine = [line for line in lines if f"{_escaped(str(src / rel))}:" in line]
        assert len(mine) == 1 and reason in mine[0], (rel, lines)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[-1]["failed"] == len(BAD) and records[-1]["done"] == 17

    # every good file written, faithfully
    def pixels(rel: str) -> np.ndarray:
        return np.asarray(Image.open(out / rel))

    for rel in ("good.png", "one.png", "strip.png", "apng.png", "la.png", "palette_trns.png", "onebit.png",
                "sub/with space é ü 日本.png", "sub/new\nline.png", os.fsdecode(b"sub/bad\xff\xfe.png")):
        assert np.array_equal(pixels(rel), expect[rel]), rel
    assert pixels("strip.png").shape == (2000, 3, 3) and pixels("one.png").shape == (1, 1, 3)
    assert Image.open(out / "la.png").mode == "LA" and Image.open(out / "palette_trns.png").mode == "RGBA"
    assert Image.open(out / "onebit.png").mode == "L"
    assert np.array_equal(pixels("anim.png"), expect["anim.png"]) and not (out / "anim.gif").exists()
    assert np.array_equal(_read_png16(out / "rgb16.png"), expect["rgb16.png"])
    assert np.array_equal(tifffile.imread(out / "rgb16.tif"), expect["rgb16.tif"])
    float_out = tifffile.imread(out / "float.tif")
    assert float_out.dtype == np.float32 and np.array_equal(float_out, expect["float.tif"])
    for rel, size in (("good.jpg", (32, 24)), ("png_inside.jpg", (12, 10)), ("cmyk.jpg", (32, 24))):
        im = Image.open(out / rel)
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == size, rel
    notes = {r["input"]: r["notes"] for r in records[:-1] if r["status"] == "done"}
    assert notes[str(src / "anim.gif")] == notes[str(src / "apng.png")] == ["animated: first frame only"]

    # nothing for the bad files, no temporary files, inputs untouched
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != PROVENANCE)
    assert len(written) == 17 and not any(TMP_MARK in name for name in written)
    assert not (out / "empty.png").exists() and (out / "occupied.png").is_dir()
    assert (src / "good.png").read_bytes() == _encoded(Image.fromarray(expect["good.png"]), "PNG")


def test_max_pixels_refuses_and_allows(tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(_rgb(30, 40, 0)).save(src)
    refused = runner.invoke(app, ["restore", str(src), str(tmp_path / "o.png"), *IDENTITY, "--max-pixels", "1199"])
    assert refused.exit_code == 3
    assert _failure_lines(refused.stderr) == [
        f"failed {src}: 40x30 pixels exceeds --max-pixels 1199 (decompression-bomb guard); raise --max-pixels to allow it"
    ]
    allowed = runner.invoke(app, ["restore", str(src), str(tmp_path / "o.png"), *IDENTITY, "--max-pixels", "1200"])
    assert allowed.exit_code == 0 and Image.open(tmp_path / "o.png").size == (40, 30)


# --------------------------------------------------------------------------- names and output paths


def test_error_lines_escape_control_characters_in_names(tmp_path):
    """A name with a newline or a terminal escape sequence stays one harmless line."""
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a\nb.png", "a\nb.jpg"):
        Image.fromarray(_rgb(4, 4, 0)).save(src / name, "PNG")
    clash = runner.invoke(app, ["restore", str(src), str(tmp_path / "out"), *IDENTITY, "--format", "png"])
    assert clash.exit_code == 2
    assert len(clash.stderr.strip().splitlines()) == 1 and "a\\nb.png" in clash.stderr
    (src / "a\nb.jpg").unlink()
    (src / "evil\x1b[2J\rname.png").write_bytes(b"\x1b]0;title\x07")
    result = runner.invoke(app, ["restore", str(src), str(tmp_path / "out"), *IDENTITY])
    assert result.exit_code == 3
    assert "\x1b" not in result.stderr and "\r" not in result.stderr
    assert _failure_lines(result.stderr) == [
        f"failed {src}/evil\\x1b[2J\\rname.png: not a recognised image format"
    ]
    assert (tmp_path / "out" / "a\nb.png").is_file()


def test_output_folder_that_is_a_file_is_a_usage_error(tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(_rgb(4, 4, 0)).save(src)
    (tmp_path / "out").write_text("precious")
    result = runner.invoke(app, ["restore", str(src), str(tmp_path / "out"), *IDENTITY])
    assert result.exit_code == 2 and "exists and is not a folder" in result.stderr
    assert (tmp_path / "out").read_text() == "precious"


def test_unwritable_output_folder_stops_before_the_model_loads(tmp_path, monkeypatch):
    """One line, exit 1, and no model loaded (the weights named here do not even exist)."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(_rgb(4, 4, i)).save(src / f"{i}.png")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: make the OS answer EACCES for this folder
        real_mkstemp = tempfile.mkstemp

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and Path(dir) == out:
                raise PermissionError(errno.EACCES, "Permission denied", str(dir))
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    try:
        result = runner.invoke(app, ["restore", str(src), str(out), "-w", str(tmp_path / "missing.safetensors")])
    finally:
        out.chmod(0o755)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == f"airtool: error: {out}: cannot write to the output folder (Permission denied)"
    assert list(out.iterdir()) == []


DROP_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps", "-dac_override,-dac_read_search", "--"]


@pytest.mark.slow
def test_permissions_for_real_unreadable_input_and_unwritable_output_subfolder(tmp_path):
    """Real EACCES from the kernel, in a real process. Root ignores permissions through two
    capabilities; as root, the run is started without them (setpriv), so they apply again."""
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "locked").mkdir(parents=True)
    (out / "locked").mkdir(parents=True)
    for rel in ("ok.png", "secret.png", "locked/b.png"):
        Image.fromarray(_rgb(5, 6, 0)).save(src / rel)
    cmd = [sys.executable, "-m", "airtool", "restore", str(src), str(out), "-r", *IDENTITY]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv (util-linux) is not installed")
        cmd = DROP_DAC + cmd
    (src / "secret.png").chmod(0)
    (out / "locked").chmod(0o555)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)
    finally:
        (src / "secret.png").chmod(0o644)
        (out / "locked").chmod(0o755)
    if proc.stderr.startswith("setpriv:"):
        pytest.skip(f"cannot drop capabilities here: {proc.stderr.strip()}")
    assert proc.returncode == 3, proc.stderr
    assert sorted(_failure_lines(proc.stderr)) == [
        f"failed {src}/locked/b.png: cannot write output (Permission denied)",
        f"failed {src}/secret.png: permission denied",
    ]
    assert np.array_equal(np.asarray(Image.open(out / "ok.png")), _rgb(5, 6, 0))
    assert list((out / "locked").iterdir()) == []


# --------------------------------------------------------------------------- hostile weights


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


def test_hostile_and_damaged_weights_are_one_line_and_run_no_code(tmp_path):
    import torch

    from airtool.models import get_spec
    from airtool.models.weights import save_weights, update_manifest

    src = tmp_path / "a.png"
    Image.fromarray(_rgb(8, 8, 0)).save(src)
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"params": _Payload(str(marker))}, evil)
    good = tmp_path / "w" / "symunet-x.safetensors"
    digest = save_weights(get_spec("symunet").create("tiny"), good, model="symunet", variant="tiny", config={})
    update_manifest(good.parent, good.name, {"sha256": digest[::-1]})  # the manifest disagrees
    wrong = tmp_path / "wrong.pth"
    torch.save({"params": {"intro.weight": torch.zeros(1)}}, wrong)
    cases = {evil: "refused or unreadable", good: "sha256 does not match", wrong: "weights do not match the model"}
    for weights, reason in cases.items():
        result = runner.invoke(app, ["restore", str(src), str(tmp_path / "out"), "-w", str(weights)])
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(weights) in lines[0] and reason in lines[0], lines
    assert not marker.exists() and not (tmp_path / "out").exists()
