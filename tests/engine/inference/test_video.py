"""The segment runner: an interrupted video keeps its finished segments, a re-run with the same
input and settings restores only the rest and writes the same video as an uninterrupted run."""

from __future__ import annotations

import pytest

from airtool.engine.inference.video import VideoTask, parts_dir, run_video
from airtool.io.atomic import TMP_MARK
from airtool.io.video import probe
from tests.videos import make_video, packets


class _Interrupt:
    """A transform that presses Ctrl-C when it reaches frame ``at``."""

    def __init__(self, at: int | None) -> None:
        self.at, self.seen = at, []

    def __call__(self, index, pixels):
        if index == self.at:
            raise KeyboardInterrupt
        self.seen.append(index)
        return pixels


def _task(info, dst, transform, recipe=None, **kw):
    return VideoTask(info=info, dst=dst, label=str(info.path), transform=transform, recipe=recipe or {"v": 1},
                     segment_seconds=0.5, **kw)


@pytest.fixture
def clip(ffmpeg, tmp_path):
    return probe(make_video(ffmpeg, tmp_path / "clip.mp4", seconds=3), "clip.mp4")  # 72 frames, segments of 12


def test_interrupted_video_resumes_from_its_last_segment_and_matches_an_uninterrupted_run(ffmpeg, clip, tmp_path):
    whole = run_video(_task(clip, tmp_path / "whole" / "clip.mp4", _Interrupt(None)))
    assert (whole.frames, whole.resumed_from) == (72, 0)
    dst = tmp_path / "out" / "clip.mp4"
    with pytest.raises(KeyboardInterrupt):
        run_video(_task(clip, dst, _Interrupt(at=40)))
    assert not dst.exists()  # nothing a re-run could take for a finished video
    kept = sorted(p.name for p in parts_dir(dst).glob("seg-*.json"))
    assert kept == [f"seg-{i:06d}.json" for i in range(3)]  # frames 0-35; the segment of frame 40 was dropped
    assert not [p for p in parts_dir(dst).iterdir() if TMP_MARK in p.name]
    again = _Interrupt(None)
    done = run_video(_task(clip, dst, again))
    assert again.seen == list(range(36, 72))  # only the missing frames were restored
    assert (done.frames, done.resumed_from) == (72, 36) and "resumed at frame 36" in done.notes[0]
    assert packets(ffmpeg, dst, "v:0") == packets(ffmpeg, whole.path, "v:0")  # same bytes, packet by packet
    assert packets(ffmpeg, dst, "a:0") == packets(ffmpeg, clip.path, "a:0")
    assert not parts_dir(dst).exists()


def test_kept_segments_are_not_reused_with_other_settings_or_with_overwrite(clip, tmp_path):
    dst = tmp_path / "out" / "clip.mp4"
    with pytest.raises(KeyboardInterrupt):
        run_video(_task(clip, dst, _Interrupt(at=30)))
    other = _Interrupt(None)
    done = run_video(_task(clip, dst, other, recipe={"v": 2}))  # e.g. another model
    assert other.seen == list(range(72)) and done.resumed_from == 0
    assert "started again" in done.notes[0]
    with pytest.raises(KeyboardInterrupt):
        run_video(_task(clip, tmp_path / "o2" / "clip.mp4", _Interrupt(at=30)))
    fresh = _Interrupt(None)
    assert run_video(_task(clip, tmp_path / "o2" / "clip.mp4", fresh, fresh=True)).resumed_from == 0
    assert fresh.seen == list(range(72))


def test_interrupted_during_the_final_mux_the_rerun_only_muxes(clip, tmp_path):
    dst = tmp_path / "out" / "clip.mp4"

    def stop_before_the_rename(frames):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_video(_task(clip, dst, _Interrupt(None), before_publish=stop_before_the_rename))
    assert not dst.exists() and not [p for p in dst.parent.iterdir() if TMP_MARK in p.name]
    again = _Interrupt(None)
    done = run_video(_task(clip, dst, again))
    assert again.seen == [] and (done.frames, done.resumed_from) == (72, 72) and dst.is_file()
