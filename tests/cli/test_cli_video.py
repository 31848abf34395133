"""Video in, video out through the real CLI, on small clips the tests make with the
bundled ffmpeg: what is kept, bad videos in a mixed batch, kill -9 and Ctrl-C, memory, degrade."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from airtool.cli import app
from airtool.engine.inference.video import _locked, parts_dir
from airtool.io.atomic import TMP_MARK
from tests.conftest import gradient_image
from tests.videos import decoded, frame_times, header, make_video, packets, rotation

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _restore(*args: str):
    return runner.invoke(app, ["restore", *args, "--model", "identity", "--device", "cpu"])


def _records(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _png(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((gradient_image(24, 32, seed=seed) * 255).astype(np.uint8)).save(path)


def test_restore_keeps_frames_timing_audio_rotation_and_tags(ffmpeg, tmp_path):
    clip = make_video(ffmpeg, tmp_path / "clip.mp4", seconds=2, fps="30000/1001", rotation=90,
                      extra=("-metadata", "title=Holiday", "-metadata:s:a:0", "language=fra"))
    out = tmp_path / "clean.mp4"
    result = _restore(str(clip), str(out), "--json", "--crf", "18")
    assert result.exit_code == 0, result.output
    record = _records(result)[0]
    count = len(frame_times(ffmpeg, clip))  # 59: -shortest ends the clip with its audio
    assert (record["output"], record["kind"], record["frames"], record["frame_rate"]) == (str(out), "video", count, "30000/1001")
    assert record["fps"] > 0 and record["seconds"] > 0 and record["duration"] == pytest.approx(count * 1001 / 30000)
    assert frame_times(ffmpeg, out) == frame_times(ffmpeg, clip)  # every frame, at its time
    assert packets(ffmpeg, out, "a:0") == packets(ffmpeg, clip, "a:0")  # audio copied bit for bit
    assert rotation(ffmpeg, out) == 90
    text = header(ffmpeg, out)
    assert "Holiday" in text and "(fra): Audio" in text and "29.97 fps" in text
    frames, source = decoded(ffmpeg, out, 64, 48).astype(int), decoded(ffmpeg, clip, 64, 48).astype(int)
    assert frames.shape == (count, 48, 64, 3)
    assert np.abs(frames - source).mean() < 4  # lossy h264 both ways; a lost or shifted frame would show


def test_codec_bit_rate_and_pixel_format_follow_the_input_unless_overridden(ffmpeg, tmp_path):
    clip = make_video(ffmpeg, tmp_path / "clip.mp4", seconds=3, size="320x240", audio=False)
    result = _restore(str(clip), str(tmp_path / "same"))
    assert result.exit_code == 0, result.output
    same = tmp_path / "same" / "clip.mp4"
    assert "Video: h264" in header(ffmpeg, same) and "yuv420p(" in header(ffmpeg, same)
    assert 0.7 < same.stat().st_size / clip.stat().st_size < 1.3  # about the input's bit rate
    result = _restore(str(clip), str(tmp_path / "other"), "--codec", "vp9", "--crf", "40", "--pix-fmt", "yuv444p")
    assert result.exit_code == 0, result.output
    other = header(ffmpeg, tmp_path / "other" / "clip.mp4")
    assert "Video: vp9" in other and "yuv444p" in other


def test_variable_frame_rate_timestamps_are_kept(ffmpeg, tmp_path):
    clip = make_video(ffmpeg, tmp_path / "vfr.mkv", vfr=True)
    result = _restore(str(clip), str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    times = frame_times(ffmpeg, tmp_path / "out" / "vfr.mkv")
    assert len(times) == 36 and times == frame_times(ffmpeg, clip)
    assert len({b - a for a, b in zip(times, times[1:], strict=False)}) > 1  # the clip really is variable-rate


def test_every_audio_subtitle_and_attachment_stream_is_copied_unchanged(ffmpeg, tmp_path):
    base = make_video(ffmpeg, tmp_path / "base.mkv")
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    font = tmp_path / "notes.txt"
    font.write_text("an attachment")
    clip = tmp_path / "clip.mkv"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(base), "-f", "lavfi", "-i", "sine=frequency=300:duration=2", "-i", str(srt),
                    "-map", "0", "-map", "1", "-map", "2", "-c", "copy", "-c:a:1", "libvorbis", "-metadata:s:a:1", "language=deu",
                    "-attach", str(font), "-metadata:s:t", "mimetype=text/plain", str(clip)], check=True)
    result = _restore(str(clip), str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "clip.mkv"
    for stream in ("a:0", "a:1", "s:0"):
        assert packets(ffmpeg, out, stream) == packets(ffmpeg, clip, stream), stream
    assert "notes.txt" in header(ffmpeg, out) and "(deu): Audio" in header(ffmpeg, out)


def test_identity_through_a_lossless_encode_gives_back_the_same_pixels_and_colour_tags(ffmpeg, tmp_path):
    """BT.709 4:4:4 at CRF 0: any mismatch in the RGB <-> YUV matrix or range would show (a BT.601
    matrix moves these colours by up to 22 levels)."""
    clip = make_video(ffmpeg, tmp_path / "c.mp4", audio=False, pix_fmt="yuv444p",
                      vf="scale=out_color_matrix=bt709:out_range=tv,format=yuv444p",  # BT.709 content, not just tags
                      extra=("-crf", "0", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"))
    result = _restore(str(clip), str(tmp_path / "out"), "--crf", "0")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "c.mp4"
    assert np.array_equal(decoded(ffmpeg, out, 64, 48), decoded(ffmpeg, clip, 64, 48))
    assert "yuv444p(tv, bt709" in header(ffmpeg, out)


def test_ten_bit_video_stays_ten_bit(ffmpeg, tmp_path):
    clip = make_video(ffmpeg, tmp_path / "hdr.mkv", audio=False, codec="libx265", pix_fmt="yuv420p10le",
                      extra=("-x265-params", "log-level=error"))
    result = _restore(str(clip), str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "hevc" in header(ffmpeg, tmp_path / "out" / "hdr.mkv") and "yuv420p10le" in header(ffmpeg, tmp_path / "out" / "hdr.mkv")


def test_mixed_batch_images_videos_and_bad_videos_one_line_each_exit_3(ffmpeg, tmp_path):
    src = tmp_path / "in"
    _png(src / "a.png")
    _png(src / "sub" / "b.png", seed=1)
    make_video(ffmpeg, src / "clip.mp4")
    make_video(ffmpeg, src / "sub" / "dashcam.dat", extra=("-f", "mpegts"))  # MPEG-TS under another name
    whole = make_video(ffmpeg, tmp_path / "whole.mkv").read_bytes()
    (src / "cut.mkv").write_bytes(whole[: len(whole) // 2])
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(src / "voice.mp4")], check=True)
    (src / "fake.webm").write_text("not a video")
    out = tmp_path / "out"
    result = _restore(str(src), str(out), "-r")
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed")]
    reasons = {line.split(": ", 1)[0].rsplit("/", 1)[-1]: line.split(": ", 1)[1] for line in failed}
    assert reasons == {"cut.mkv": "truncated video (the file ends before its data does)",
                       "voice.mp4": "no video stream",
                       "fake.webm": "not a video (no MP4, MOV, Matroska/WebM, AVI or MPEG-TS content)"}
    for rel in ("a.png", "sub/b.png", "clip.mp4", "sub/dashcam.dat"):
        assert (out / rel).is_file(), rel
    dashcam = src / "sub" / "dashcam.dat"
    assert frame_times(ffmpeg, out / "sub" / "dashcam.dat") == frame_times(ffmpeg, dashcam)  # 48, from 1.4 s on
    assert packets(ffmpeg, out / "sub" / "dashcam.dat", "a:0") == packets(ffmpeg, dashcam, "a:0")  # the audio starts first
    written = sorted(p.name for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))  # not provenance
    assert written == ["a.png", "b.png", "clip.mp4", "dashcam.dat"]


def test_without_the_video_extra_each_video_is_one_line_and_images_are_written(tmp_path, monkeypatch):
    src = tmp_path / "in"
    _png(src / "a.png")
    (src / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    result = _restore(str(src), str(tmp_path / "out"))
    assert result.exit_code == 3 and "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if "clip.mp4" in line]
    assert lines == [f"failed {src / 'clip.mp4'}: is a video; video support needs the video extra: pip install 'airtool[video]'"]
    assert (tmp_path / "out" / "a.png").is_file()


def test_usage_errors_for_videos(ffmpeg, tmp_path):
    clip = make_video(ffmpeg, tmp_path / "clip.mp4", seconds=0.5)
    bad_codec = _restore(str(clip), str(tmp_path / "o"), "--codec", "no-such-codec")
    assert bad_codec.exit_code == 2 and "no-such-codec" in bad_codec.stderr
    assert _restore(str(clip), str(tmp_path / "o.png")).exit_code == 2
    assert _restore(str(clip), str(tmp_path / "o"), "--segment", "0").exit_code == 2
    dry = _restore(str(clip), str(tmp_path / "o"), "--dry-run", "--json")
    assert dry.exit_code == 0 and _records(dry)[0]["status"] == "planned" and not (tmp_path / "o").exists()


@pytest.mark.skipif(os.name != "posix", reason="the lock is POSIX flock")
def test_a_second_run_on_a_video_in_progress_is_refused_in_one_line(ffmpeg, tmp_path):
    clip = make_video(ffmpeg, tmp_path / "clip.mp4", seconds=0.5)
    with _locked(parts_dir(tmp_path / "out" / "clip.mp4"), "held by the test"):
        result = _restore(str(clip), str(tmp_path / "out"))
    assert result.exit_code == 3 and "another airtool run is working on this video" in result.stderr
    assert _restore(str(clip), str(tmp_path / "out")).exit_code == 0  # once the lock is gone


# --------------------------------------------------------------------------- killed runs


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """10 s at 24 fps in segments of 0.5 s: 20 segments, so a run lasts long enough to be killed."""
    import imageio_ffmpeg  # skipped by the ffmpeg fixture in the tests below when missing

    folder = tmp_path_factory.mktemp("long")
    clip = make_video(imageio_ffmpeg.get_ffmpeg_exe(), folder / "long.mp4", seconds=10)
    clean = folder / "clean"
    result = _restore(str(clip), str(clean), "--segment", "0.5")
    assert result.exit_code == 0, result.output
    return clip, clean / "long.mp4"


def _start(clip: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "airtool", "restore", str(clip), str(out), "--model", "identity", "--device", "cpu",
           "--segment", "0.5", "--json", "--threads", "1"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_segments(proc: subprocess.Popen, parts: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while len(list(parts.glob("seg-*.json"))) < count:
        assert proc.poll() is None, f"the run ended before {count} segments: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline
        time.sleep(0.005)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
@pytest.mark.parametrize("sig", [getattr(signal, "SIGKILL", 9), signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_killed_mid_video_leaves_no_output_and_the_rerun_resumes(ffmpeg, long_clip, tmp_path, sig):
    clip, clean = long_clip
    out = tmp_path / "out"
    proc = _start(clip, out)
    _wait_for_segments(proc, parts_dir(out / "long.mp4"), 3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 130), err.decode()
    if sig == signal.SIGINT:
        assert "Traceback" not in err.decode()
    assert not (out / "long.mp4").exists()  # no partial video that a re-run would skip
    kept = len(list(parts_dir(out / "long.mp4").glob("seg-*.json")))
    assert kept >= 3
    result = _restore(str(clip), str(out), "--segment", "0.5", "--json")
    assert result.exit_code == 0, result.output
    record = _records(result)[0]
    assert record["frames"] == 240 and record["resumed_from"] == 12 * kept
    assert packets(ffmpeg, out / "long.mp4", "v:0") == packets(ffmpeg, clean, "v:0")
    assert packets(ffmpeg, out / "long.mp4", "a:0") == packets(ffmpeg, clip, "a:0")
    assert not parts_dir(out / "long.mp4").exists() and not list(out.rglob(f"*{TMP_MARK}*"))


# --------------------------------------------------------------------------- memory


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.fork and os.wait4 (POSIX)")
def test_peak_memory_of_a_30_s_clip_is_within_10_percent_of_a_3_s_clip(ffmpeg, tmp_path):
    from tools.bench_memory import peak_child

    peaks = {}
    for seconds in (3, 30):
        clip = make_video(ffmpeg, tmp_path / f"c{seconds}.mp4", seconds=seconds, size="160x120")
        cmd = [sys.executable, "-m", "airtool", "restore", str(clip), str(tmp_path / f"o{seconds}"), "--model", "identity",
               "--device", "cpu", "--threads", "1", "--quiet"]
        peaks[seconds], _, code = peak_child(cmd)
        assert code == 0
        assert len(frame_times(ffmpeg, tmp_path / f"o{seconds}" / f"c{seconds}.mp4")) == seconds * 24
    # Keeping the 30 s clip's frames (as float32) would add far more than 10 %: the test can fail.
    assert 30 * 24 * 160 * 120 * 3 * 4 > 0.1 * peaks[3]
    assert peaks[30] <= 1.10 * peaks[3], {s: round(p / 2**20) for s, p in peaks.items()}


# --------------------------------------------------------------------------- degrade


def _degrade(*args: str):
    return runner.invoke(app, ["degrade", *args])


def _expected_frame(chain, clip_params, frame: np.ndarray, index: int, relpath: str, per_frame=False) -> np.ndarray:
    params = chain.frame_params(clip_params, 0, relpath, index, per_frame=per_frame)
    img = torch.from_numpy(frame.astype(np.float32) / np.float32(255)).permute(2, 0, 1)
    out = chain.apply(img, params).permute(1, 2, 0).numpy()
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


@pytest.fixture
def still(ffmpeg, tmp_path):
    """One second of one unchanging frame, in a lossless codec (FFV1, RGB), so every output pixel
    can be checked exactly."""
    return make_video(ffmpeg, tmp_path / "still.mkv", seconds=1, still=True, codec="ffv1", pix_fmt="gbrp")


def test_degrade_noise_is_fresh_every_frame_and_each_frame_is_reproducible(ffmpeg, still, tmp_path):
    from airtool.degrade import Chain
    from airtool.degrade.chain import file_rng

    result = _degrade(str(still), str(tmp_path / "o"), "--noise", "25", "--rain", "light", "--seed", "0")
    assert result.exit_code == 0, result.output
    frames = decoded(ffmpeg, tmp_path / "o" / "still.mkv", 64, 48)
    assert len(frames) == 24 and all(not np.array_equal(frames[0], f) for f in frames[1:])
    chain = Chain.parse([("noise", "25"), ("rain", "light")])
    clip_params = chain.sample(file_rng(0, "still.mkv"))
    source = decoded(ffmpeg, still, 64, 48)
    for index in (0, 7, 23):
        assert np.array_equal(frames[index], _expected_frame(chain, clip_params, source[index], index, "still.mkv"))
    angles = {chain.frame_params(clip_params, 0, "still.mkv", i)[1].angle for i in range(24)}
    assert len(angles) == 1  # the rain's direction is the clip's
    sidecar = json.loads((tmp_path / "o" / "still.mkv.json").read_text())
    assert sidecar["video"]["frames"] == 24 and sidecar["video"]["fresh_each_frame"] == ["noise", "rain"]
    assert sidecar["ops"][1]["params"]["angle"] == angles.pop()
    assert packets(ffmpeg, tmp_path / "o" / "still.mkv", "a:0") == packets(ffmpeg, still, "a:0")
    again = _degrade(str(still), str(tmp_path / "o2"), "--noise", "25", "--rain", "light", "--seed", "0")
    assert again.exit_code == 0 and np.array_equal(decoded(ffmpeg, tmp_path / "o2" / "still.mkv", 64, 48), frames)


def test_degrade_haze_and_blur_stay_fixed_for_the_clip_unless_per_frame(ffmpeg, still, tmp_path):
    args = ["--haze", "medium", "--blur", "shake"]
    fixed = _degrade(str(still), str(tmp_path / "pairs"), "--pairs", *args)
    assert fixed.exit_code == 0, fixed.output
    frames = decoded(ffmpeg, tmp_path / "pairs" / "input" / "still.mkv", 64, 48)
    assert all(np.array_equal(frames[0], f) for f in frames[1:])  # one haze, one kernel for the clip
    assert not np.array_equal(frames[0], decoded(ffmpeg, still, 64, 48)[0])
    assert (tmp_path / "pairs" / "target" / "still.mkv").read_bytes() == still.read_bytes()  # the clean copy
    varying = _degrade(str(still), str(tmp_path / "pf"), "--per-frame", *args)
    assert varying.exit_code == 0, varying.output
    frames = decoded(ffmpeg, tmp_path / "pf" / "still.mkv", 64, 48)
    assert len({f.tobytes() for f in frames}) == 24
    assert json.loads((tmp_path / "pf" / "still.mkv.json").read_text())["video"]["per_frame"] is True


# --------------------------------------------------------------------------- progress


def test_progress_in_frames_with_an_eta_on_a_terminal_only():
    from rich.console import Console

    from airtool.report import ConsoleReporter, FileResult

    for terminal in (True, False):
        reporter = ConsoleReporter()
        buffer = io.StringIO()
        reporter.console = Console(file=buffer, force_terminal=terminal, width=100)
        reporter.start(1)
        reporter.frames("clip.mp4", 10, 48)
        if terminal:
            reporter.progress.refresh()
            shown = buffer.getvalue()
            assert "clip.mp4 (frames)" in shown and "10/48" in shown and ("-:--:--" in shown or "0:00" in shown)
        reporter.file(FileResult("clip.mp4", "out.mp4", "done"))
        reporter.progress and reporter.progress.stop()
        if not terminal:
            assert buffer.getvalue() == ""
