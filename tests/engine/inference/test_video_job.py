"""A video as one job of a batch: the codec is checked before any work, the video runs through
its transform with the batch's settings, and its save reports what was already written."""

from __future__ import annotations

import sys

import pytest

from airtool.engine.inference.batch import Saved
from airtool.engine.inference.options import BatchOptions
from airtool.engine.inference.video import VideoOutcome
from airtool.engine.inference.video_job import check_codec, probe, run_video_job, with_videos
from airtool.errors import UsageError
from airtool.io.paths import plan
from airtool.report import NullReporter
from tests.videos import make_video


def test_an_unknown_codec_is_refused_only_when_a_video_would_use_it(ffmpeg, tmp_path, monkeypatch):
    (tmp_path / "a.png").write_bytes(b"not read")
    make_video(ffmpeg, tmp_path / "clip.mp4", seconds=0.5, audio=False)
    options = BatchOptions(codec="no-such-codec")
    check_codec(plan([str(tmp_path / "a.png")], str(tmp_path / "out")), options)  # pictures only
    with_video = plan([str(tmp_path)], str(tmp_path / "out"))
    with pytest.raises(UsageError, match="--codec 'no-such-codec'"):
        check_codec(with_video, options)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    check_codec(with_video, options)  # no video support: each video fails on its own, saying why


def test_a_video_job_runs_every_frame_through_the_transform_and_reports_its_frames(ffmpeg, tmp_path):
    (tmp_path / "in").mkdir()
    make_video(ffmpeg, tmp_path / "in" / "clip.mp4", seconds=1, audio=False)
    job = plan([str(tmp_path / "in")], str(tmp_path / "out")).jobs[0]
    seen, progress = [], []

    class Frames(NullReporter):
        def frames(self, name, done, total):
            progress.append((name, done, total))

    def transform(index, pixels):
        seen.append(index)
        return pixels

    outcome = run_video_job(job, probe(job, 10**6), BatchOptions(segment=0.5), Frames(), transform, {"v": 1})
    assert outcome.frames == 24 and seen == list(range(24)) and job.dst.is_file()
    assert progress[-1] == ("clip.mp4", 24, 24)


def test_a_finished_video_is_reported_as_saved_and_pictures_go_to_the_picture_saver():
    save = with_videos(lambda job, item: f"picture {item}")
    assert save(None, "p") == "picture p"
    outcome = VideoOutcome("out.mp4", frames=10, frames_this_run=10, resumed_from=0, seconds=2.0, frame_rate="24",
                           duration=0.4, notes=["n"])
    assert save(None, outcome) == Saved("out.mp4", ["n"], outcome.to_extra())
