"""Atomic writes: temporary names fit any file name, and only dead runs' leftovers are removed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from airtool.io.atomic import TMP_MARK, atomic_path, remove_stale_temps, temp_prefix, write_bytes, write_stream


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_long_non_ascii_names_get_temporary_names_within_the_limit(tmp_path):
    """A 244-byte name of 4-byte characters: cutting its stem by characters (80 of them = 320
    bytes) made the temporary name too long for the file system."""
    dst = tmp_path / ("\U0001F600" * 60 + ".png")
    assert len(os.fsencode(dst.name)) == 244
    write_bytes(dst, b"data")
    assert dst.read_bytes() == b"data"
    assert len(os.fsencode(temp_prefix(dst))) <= 1 + 100 + len(TMP_MARK)
    assert os.listdir(tmp_path) == [dst.name]


def test_only_temporary_files_of_dead_runs_are_removed(tmp_path):
    (tmp_path / "sub").mkdir()
    dead = tmp_path / "sub" / f".a{TMP_MARK}{_dead_pid()}-x1.png"
    alive = tmp_path / "sub" / f".b{TMP_MARK}{os.getppid()}-x2.png"  # another run, still going
    mine = tmp_path / f".c{TMP_MARK}{os.getpid()}-x3.png"
    output = tmp_path / "sub" / "a.png"
    for path in (dead, alive, mine, output):
        path.write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == 1
    assert not dead.exists() and alive.exists() and mine.exists() and output.exists()


def test_a_single_output_file_gets_its_own_leftovers_removed(tmp_path):
    pid = _dead_pid()
    mine = tmp_path / f"{temp_prefix(tmp_path / 'out.png')}{pid}-abc.png"
    other = tmp_path / f"{temp_prefix(tmp_path / 'other.png')}{pid}-abc.png"
    mine.write_bytes(b"x"), other.write_bytes(b"x")
    assert remove_stale_temps(tmp_path, only_for=tmp_path / "out.png") == 1
    assert not mine.exists() and other.exists()


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(OSError):
        with atomic_path(tmp_path / "x.png") as tmp:
            tmp.write_bytes(b"half")
            raise OSError(28, "No space left on device")
    assert os.listdir(tmp_path) == []


def test_write_stream_calls_before_rename_with_the_complete_file_before_the_rename(tmp_path):
    """As ``write_bytes`` does: the hook (provenance) sees the finished temporary file while the
    destination does not exist yet; a failing hook leaves neither the file nor a temporary."""
    dst = tmp_path / "out.png"
    seen: list[tuple[bytes, bool]] = []
    write_stream(dst, lambda fh: (fh.write(b"abc"), fh.write(b"def")),
                 lambda tmp: seen.append((tmp.read_bytes(), dst.exists())))
    assert seen == [(b"abcdef", False)] and dst.read_bytes() == b"abcdef"

    def refuse(tmp):
        raise OSError("record failed")

    other = tmp_path / "other.png"
    with pytest.raises(OSError, match="record failed"):
        write_stream(other, lambda fh: fh.write(b"x"), refuse)
    assert not other.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
