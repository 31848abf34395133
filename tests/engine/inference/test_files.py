"""The files of a batch command: what counts as done, where outputs land, what a killed run left,
and atomic picture saves."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from airtool.engine.inference.files import (
    check_writable,
    clean_temps,
    destination_folder,
    has_work,
    image_saver,
    output_exists,
    read_input,
)
from airtool.io.atomic import TMP_MARK, temp_prefix
from airtool.io.paths import plan


def _pictures(folder, n=2):
    folder.mkdir()
    for i in range(n):
        Image.fromarray(np.full((6, 8, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    return folder


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_an_output_is_done_when_its_file_exists_and_the_run_has_work_until_all_are(tmp_path):
    work = plan([str(_pictures(tmp_path / "in"))], str(tmp_path / "out"))
    assert not any(output_exists(job) for job in work.jobs) and has_work(work, overwrite=False)
    for job in work.jobs:
        job.dst.parent.mkdir(parents=True, exist_ok=True)
        job.dst.write_bytes(b"done")
    assert all(output_exists(job) for job in work.jobs)
    assert not has_work(work, overwrite=False) and has_work(work, overwrite=True)


def test_the_destination_is_the_output_folder_or_a_named_files_folder_and_none_for_stdout(tmp_path):
    src = _pictures(tmp_path / "in")
    assert destination_folder(plan([str(src)], str(tmp_path / "out")), str(tmp_path / "out")) == tmp_path / "out"
    one = str(tmp_path / "sub" / "x.png")
    assert destination_folder(plan([str(src / "0.png")], one), one) == tmp_path / "sub"
    assert destination_folder(plan([str(src / "0.png")], "-"), "-") is None
    check_writable(plan([str(src / "0.png")], "-"), "-")  # stdout: nothing to check


def test_temps_of_dead_runs_are_removed_from_the_output_folder_and_beside_a_named_file(tmp_path):
    src = _pictures(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    dead = out / f".0{TMP_MARK}{_dead_pid()}-x.png"
    dead.write_bytes(b"half")
    clean_temps(plan([str(src)], str(out)), str(out))
    assert not dead.exists()
    named = tmp_path / "one" / "x.png"
    named.parent.mkdir()
    leftover = named.parent / f"{temp_prefix(named)}{_dead_pid()}-y.png"
    leftover.write_bytes(b"half")
    clean_temps(plan([str(src / "0.png")], str(named)), str(named))
    assert not leftover.exists()


def test_the_saver_writes_atomically_and_calls_the_hook_with_the_finished_temporary_file(tmp_path):
    src = _pictures(tmp_path / "in", n=1)
    job = plan([str(src)], str(tmp_path / "out")).jobs[0]
    seen = []

    def hook(tmp):
        seen.append((tmp.name.startswith(temp_prefix(job.dst)), tmp.stat().st_size > 0, job.dst.exists()))

    saved = image_saver(95, lambda j: hook)(job, read_input(job, 10_000))
    assert saved == str(job.dst) and seen == [(True, True, False)]
    assert np.array_equal(np.asarray(Image.open(job.dst)), np.asarray(Image.open(src / "0.png")))
    assert os.listdir(job.dst.parent) == ["0.png"]


def test_read_input_keeps_the_native_bit_depth_only_when_asked(tmp_path):
    src = _pictures(tmp_path / "in", n=1)
    job = plan([str(src)], str(tmp_path / "out")).jobs[0]
    assert read_input(job, 10_000, native=True).pixels.dtype == np.uint8
    assert read_input(job, 10_000).pixels.dtype == np.float32
