"""Video I/O: recognising videos by content, probing, the frame reader, the raw Matroska pipe,
encoder choices, and the one line a video gets without the video extra."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from airtool.errors import InputError
from airtool.io import rawmkv
from airtool.io.encode import settings_for
from airtool.io.frames import FrameReader
from airtool.io.paths import plan
from airtool.io.video import container_of, ffmpeg_exe, probe
from tests.videos import decoded, make_video


def _ftyp(brand: bytes) -> bytes:
    return b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x02\x00isomiso2"


def test_container_is_recognised_by_its_first_bytes():
    assert container_of(_ftyp(b"isom")) == "mp4"
    assert container_of(_ftyp(b"qt  ")) == "mov"
    assert container_of(b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat") == "mov"
    assert container_of(b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x84webm") == "webm"
    assert container_of(b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska") == "matroska"
    assert container_of(b"RIFF\x00\x10\x00\x00AVI LIST") == "avi"
    assert container_of(bytes([0x47] + [0] * 187 + [0x47] + [0] * 187 + [0x47] + [0] * 20)) == "mpegts"
    for not_video in (_ftyp(b"heic"), _ftyp(b"avif"), _ftyp(b"M4A "), b"\x89PNG\r\n\x1a\n" + bytes(20), b"hello", b""):
        assert container_of(not_video) is None


def test_folders_find_videos_by_name_or_content_and_never_open_audio_files(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (src / "clip.mp4").write_bytes(b"not checked by the plan: the probe refuses it later")
    (src / "dashcam.dat").write_bytes(_ftyp(b"isom"))  # a video under another name
    (src / "song.m4a").write_bytes(_ftyp(b"isom"))  # audio names are never opened
    (src / "notes.txt").write_text("hello")
    (src / "photo.heic").write_bytes(_ftyp(b"heic"))
    work = plan([str(src)], str(tmp_path / "out"), suffix="_r")
    kinds = {job.rel: (job.kind, job.dst.name) for job in work.jobs}
    assert kinds == {"a.png": ("image", "a_r.png"), "clip.mp4": ("video", "clip_r.mp4"),
                     "dashcam.dat": ("video", "dashcam_r.dat")}
    assert work.ignored == 3


def test_one_video_names_its_output_file_by_a_video_suffix(tmp_path):
    from airtool.errors import UsageError

    clip = tmp_path / "clip.mov"
    clip.write_bytes(_ftyp(b"qt  "))
    assert plan([str(clip)], str(tmp_path / "clean.mkv")).jobs[0].dst == tmp_path / "clean.mkv"
    assert plan([str(clip)], str(tmp_path / "out")).jobs[0].dst == tmp_path / "out" / "clip.mov"
    with pytest.raises(UsageError, match="video suffix"):
        plan([str(clip)], str(tmp_path / "clean.png"))
    with pytest.raises(UsageError, match="stdout"):
        plan([str(clip)], "-")


def test_without_the_video_extra_a_video_is_one_line_saying_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails as if not installed
    with pytest.raises(InputError) as info:
        ffmpeg_exe("clip.mp4")
    assert str(info.value) == "clip.mp4: is a video; video support needs the video extra: pip install 'airtool[video]'"


def test_probe_describes_the_clip(ffmpeg, tmp_path):
    clip = make_video(ffmpeg, tmp_path / "a.mp4", seconds=2, fps="30000/1001", rotation=-90)
    info = probe(clip, "a.mp4")
    assert (info.container, info.codec, info.pix_fmt, info.width, info.height) == ("mp4", "h264", "yuv420p", 64, 48)
    assert info.fps == pytest.approx(29.97, abs=0.01) and info.duration == pytest.approx(2.0, abs=0.05)
    assert info.rotation == -90 and info.count("audio") == 1 and info.bitrate > 0
    assert info.frames_estimate == 60


def test_probe_refuses_damaged_truncated_and_audio_only_files_with_a_reason(ffmpeg, tmp_path):
    whole = make_video(ffmpeg, tmp_path / "whole.mp4")
    fast = make_video(ffmpeg, tmp_path / "fast.mp4", extra=("-movflags", "+faststart"))
    mkv = make_video(ffmpeg, tmp_path / "whole.mkv")
    data = whole.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "cut-fast.mp4").write_bytes(fast.read_bytes()[: len(fast.read_bytes()) * 2 // 3])
    (tmp_path / "cut.mkv").write_bytes(mkv.read_bytes()[: len(mkv.read_bytes()) // 2])
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(tmp_path / "audio.mp4")],
                   check=True)
    (tmp_path / "text.mp4").write_text("hello")
    reasons = {}
    for name in ("cut.mp4", "cut-fast.mp4", "cut.mkv", "audio.mp4", "text.mp4"):
        with pytest.raises(InputError) as info:
            probe(tmp_path / name, name)
        reasons[name] = info.value.reason
    assert "moov atom not found" in reasons["cut.mp4"]
    assert reasons["cut-fast.mp4"].startswith("truncated") and reasons["cut.mkv"].startswith("truncated")
    assert reasons["audio.mp4"] == "no video stream"
    assert reasons["text.mp4"].startswith("not a video")
    assert probe(whole, "whole.mp4").codec == "h264"  # the intact files pass


def test_reader_gives_every_frame_with_its_timestamp_and_resumes_at_a_frame_index(ffmpeg, tmp_path):
    clip = make_video(ffmpeg, tmp_path / "vfr.mp4", vfr=True, audio=False)
    info = probe(clip, "vfr.mp4")
    reader = FrameReader(ffmpeg, info, "vfr.mp4")
    frames = list(reader)
    reader.close()
    assert len(frames) == 36 and reader.time_base == Fraction(1, 12288)  # 48 frames, every fourth dropped
    times = [f.pts * reader.time_base for f in frames]
    assert times[:4] == [0, Fraction(1, 24), Fraction(2, 24), Fraction(4, 24)]  # the gap of the dropped frame
    assert np.array_equal(np.stack([f.pixels for f in frames]), decoded(ffmpeg, clip, 64, 48))
    later = FrameReader(ffmpeg, info, "vfr.mp4", start_frame=20)
    rest = list(later)
    later.close()
    assert [f.index for f in rest] == list(range(20, 36))
    assert [f.pts for f in rest] == [f.pts for f in frames[20:]]
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(rest, frames[20:], strict=True))


def test_raw_matroska_pipe_keeps_each_frame_and_its_exact_timestamp(ffmpeg):
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 256, (6, 10, 3), dtype=np.uint8) for _ in range(5)]
    times_ns = [0, 41_666_667, 83_333_333, 166_666_667, 170_000_000]  # uneven on purpose
    stream = rawmkv.header(10, 6, 8, 41_666_667) + b"".join(rawmkv.frame(t, p.tobytes()) for t, p in zip(times_ns, pixels, strict=True))
    out = subprocess.run([ffmpeg, "-v", "error", "-f", "matroska", "-i", "-", "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-fps_mode", "passthrough", "-"], input=stream, capture_output=True, check=True).stdout
    assert out == b"".join(p.tobytes() for p in pixels)
    log = subprocess.run([ffmpeg, "-f", "matroska", "-i", "-", "-vf", "showinfo", "-f", "null", "-"], input=stream,
                         capture_output=True, check=True).stderr.decode()
    shown = [int(part.split()[0]) for part in log.split(" pts:")[1:]]
    assert shown == times_ns  # 1 ns time base: nothing rounded


def test_encoder_follows_the_input_and_the_overrides(ffmpeg, tmp_path):
    info = probe(make_video(ffmpeg, tmp_path / "a.mp4", audio=False), "a.mp4")
    default = settings_for(ffmpeg, info)
    assert (default.encoder, default.pix_fmt) == ("libx264", "yuv420p")
    assert default.args[:2] == ("-b:v", str(info.bitrate)) and not default.notes
    crf = settings_for(ffmpeg, info, codec="hevc", crf=20, pix_fmt="yuv444p")
    assert (crf.encoder, crf.pix_fmt, crf.args[:2]) == ("libx265", "yuv444p", ("-crf", "20"))
    vp9 = settings_for(ffmpeg, info, codec="vp9", crf=30)
    assert vp9.args[:4] == ("-crf", "30", "-b:v", "0")  # constant quality in libvpx needs -b:v 0
    lossless = settings_for(ffmpeg, info, codec="ffv1", crf=10)
    assert "-crf" not in lossless.args and "lossless" in lossless.notes[0]
    odd = settings_for(ffmpeg, info, pix_fmt="pal8")
    assert odd.pix_fmt != "pal8" and "cannot write pixel format pal8" in odd.notes[0]
