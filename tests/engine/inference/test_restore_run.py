"""``run_restore``: the real restore stages under write faults (a disk that fills up half way
through a write) and interruptions (Ctrl-C mid-way through a large picture's tiles), and what a run
checks before it loads a model."""

from __future__ import annotations

import errno
import pathlib

import numpy as np
import pytest
from PIL import Image

from airtool.engine.inference.options import RestoreOptions
from airtool.engine.inference.restore_run import run_restore
from airtool.errors import UsageError
from airtool.io.provenance import FILE_NAME
from airtool.report import NullReporter


def _tree(tmp_path, n=6):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(src / f"{i}.png")
    return src


def _files(folder):
    """The images of a folder (the provenance record beside them is not an output)."""
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != FILE_NAME}


def test_disk_full_half_way_through_writes_then_a_rerun_completes(tmp_path, monkeypatch):
    """ENOSPC after half of each of three files reached the disk: those three fail with the
    reason, nothing partial is left that a later run would skip as done, the rest is written,
    and the next run (disk freed) completes the batch."""
    src = _tree(tmp_path)
    options = RestoreOptions(model="identity", device="cpu")
    run_restore([str(src)], str(tmp_path / "clean"), options, NullReporter())
    clean = _files(tmp_path / "clean")
    from airtool.io import atomic

    real_write_stream = atomic.write_stream
    full_for = {"1.png", "3.png", "4.png"}

    class _FillsUp:
        """A file on a disk that fills after the PNG header: the image data hits ENOSPC."""

        def __init__(self, fh, room: int = 40):
            self.fh, self.room = fh, room

        def write(self, data):
            if self.fh.tell() + len(data) > self.room:
                self.fh.write(data[: max(self.room - self.fh.tell(), 0)])
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.fh.write(data)

    def write_stream(dst, write, before_rename=None):
        if dst.name in full_for:
            return real_write_stream(dst, lambda fh: write(_FillsUp(fh)), before_rename)
        return real_write_stream(dst, write, before_rename)

    monkeypatch.setattr(atomic, "write_stream", write_stream)
    out = tmp_path / "out"
    report = run_restore([str(src)], str(out), options, NullReporter())
    assert report.exit_code == 3
    assert sorted(pathlib.Path(r.input).name for r in report.failed) == sorted(full_for)
    assert all(r.reason == "cannot write output (No space left on device)" for r in report.failed)
    assert _files(out) == {k: v for k, v in clean.items() if k not in full_for}  # complete or absent
    monkeypatch.undo()
    again = run_restore([str(src)], str(out), options, NullReporter())
    assert (again.exit_code, again.count("skipped"), again.count("done")) == (0, 3, 3)
    assert _files(out) == clean


def test_a_large_picture_interrupted_mid_way_resumes_from_its_tiles_to_the_same_file(tmp_path, tiny_weights):
    """Ctrl-C after 5 of 16 tiles: exit 130, no output, the finished tiles kept beside it; the rerun
    continues from them and writes the bytes an uninterrupted run writes, then the tiles go."""
    from airtool.io.tile_resume import folder_for

    src = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (170, 180, 3), dtype=np.uint8)).save(src)
    options = RestoreOptions(model="symunet", weights=str(tiny_weights), device="cpu", precision="fp32", tile=64,
                             tile_overlap=16)
    run_restore([str(src)], str(tmp_path / "whole" / "big.png"), options, NullReporter())

    class CtrlC(NullReporter):
        def tiles(self, name, done, total):
            if done >= 5:
                raise KeyboardInterrupt

    out = tmp_path / "out" / "big.png"
    assert run_restore([str(src)], str(out), options, CtrlC()).exit_code == 130
    assert not out.exists() and any(folder_for(out).glob("w*.bin"))
    seen: list[int] = []

    class Follow(NullReporter):
        def tiles(self, name, done, total):
            seen.append(done)

    report = run_restore([str(src)], str(out), options, Follow())
    assert report.exit_code == 0 and seen[0] == 5
    assert "resumed: 5 of 16 tiles kept from an interrupted run" in report.results[0].notes
    assert out.read_bytes() == (tmp_path / "whole" / "big.png").read_bytes()
    assert not folder_for(out).exists()


def _no_model(options):
    raise AssertionError("the model should not load")


def test_a_run_with_nothing_left_to_write_loads_no_model(tmp_path, monkeypatch):
    src = _tree(tmp_path, n=2)
    options = RestoreOptions(model="identity", device="cpu")
    run_restore([str(src)], str(tmp_path / "out"), options, NullReporter())
    monkeypatch.setattr("airtool.engine.inference.restore_run.build_restorer", _no_model)
    again = run_restore([str(src)], str(tmp_path / "out"), options, NullReporter())
    assert (again.exit_code, again.count("skipped")) == (0, 2)


def test_outputs_of_another_recipe_are_refused_before_the_model_loads(tmp_path, monkeypatch):
    src = _tree(tmp_path, n=3)
    run_restore([str(src)], str(tmp_path / "out"), RestoreOptions(model="identity", device="cpu"), NullReporter())
    (tmp_path / "out" / "2.png").unlink()  # one left to do: the run would load the model for it
    monkeypatch.setattr("airtool.engine.inference.restore_run.build_restorer", _no_model)
    with pytest.raises(UsageError, match=r"and 1 more outputs were made with quality 95; this run would use quality 50"):
        run_restore([str(src)], str(tmp_path / "out"), RestoreOptions(model="identity", quality=50), NullReporter())
