from __future__ import annotations

import os
from pathlib import Path

import pytest

from airtool.errors import UsageError
from airtool.io.paths import plan


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folder_mirrors_tree_and_skips_hidden_and_non_images(tmp_path):
    src = tmp_path / "in"
    _touch(src / "a.png"), _touch(src / "sub" / "b.jpg"), _touch(src / ".hidden.png"), _touch(src / "notes.txt")
    flat = plan([str(src)], str(tmp_path / "out"))
    assert [j.rel for j in flat.jobs] == ["a.png"]
    deep = plan([str(src)], str(tmp_path / "out"), recursive=True, suffix="_r", fmt="png")
    assert sorted(str(j.dst.relative_to(tmp_path / "out")) for j in deep.jobs) == ["a_r.png", "sub/b_r.png"]
    assert deep.ignored == 2


def test_single_file_to_file_and_stdout(tmp_path):
    src = _touch(tmp_path / "a.jpg")
    assert plan([str(src)], str(tmp_path / "b.png")).jobs[0].fmt == "PNG"
    assert plan([str(src)], "-").jobs[0].dst is None
    assert plan(["-"], "-").jobs[0].fmt is None  # the input's format, sniffed once its bytes are read
    assert plan(["-"], "-", fmt="jpg").jobs[0].fmt == "JPEG"


def test_output_equal_to_input_is_refused(tmp_path):
    src = _touch(tmp_path / "a.png")
    with pytest.raises(UsageError, match="overwrite the input"):
        plan([str(tmp_path)], str(tmp_path))
    with pytest.raises(UsageError, match="overwrite the input"):
        plan([str(src)], str(src))


def test_two_inputs_to_one_output_detected_before_work(tmp_path):
    _touch(tmp_path / "in" / "a.png"), _touch(tmp_path / "in" / "a.jpg")
    with pytest.raises(UsageError, match="would both be written"):
        plan([str(tmp_path / "in")], str(tmp_path / "out"), fmt="png")


def test_symlink_loop_and_dangling_link_reported(tmp_path):
    src = tmp_path / "in"
    _touch(src / "a.png")
    os.symlink(src, src / "loop")
    os.symlink(tmp_path / "missing.png", src / "dangling.png")
    result = plan([str(src)], str(tmp_path / "out"), recursive=True)
    assert any("loop" in reason for _, reason in result.problems)
    assert "dangling.png" in [j.rel for j in result.jobs]  # fails later, with its own reason


def test_output_folder_inside_input_is_not_walked(tmp_path):
    _touch(tmp_path / "a.png"), _touch(tmp_path / "out" / "a.png")
    result = plan([str(tmp_path)], str(tmp_path / "out"), recursive=True)
    assert [j.rel for j in result.jobs] == ["a.png"]


def test_output_folder_that_exists_as_a_file_is_refused_before_work(tmp_path):
    _touch(tmp_path / "in" / "a.png")
    (tmp_path / "out").write_text("I am a file")
    for inputs in ([str(tmp_path / "in")], [str(tmp_path / "in" / "a.png")]):
        with pytest.raises(UsageError, match="exists and is not a folder"):
            plan(inputs, str(tmp_path / "out"))
    assert (tmp_path / "out").read_text() == "I am a file"


def test_gif_inputs_are_written_as_png(tmp_path):
    src = _touch(tmp_path / "in" / "anim.gif")
    job = plan([str(tmp_path / "in")], str(tmp_path / "out")).jobs[0]
    assert job.fmt == "PNG" and job.dst.name == "anim.png"
    assert plan([str(src)], str(tmp_path / "x.png")).jobs[0].fmt == "PNG"
    with pytest.raises(UsageError, match="does not write GIF"):
        plan([str(src)], str(tmp_path / "x.gif"))


def test_names_with_spaces_unicode_newlines_and_undecodable_bytes_map_to_the_same_names(tmp_path):
    names = ["with space.png", "ünï cödé 日本.png", "new\nline.png", os.fsdecode(b"bad\xff\xfe.png")]
    for name in names:
        _touch(tmp_path / "in" / name)
    jobs = plan([str(tmp_path / "in")], str(tmp_path / "out")).jobs
    assert sorted(j.dst.name for j in jobs) == sorted(names)
