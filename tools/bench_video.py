"""Video throughput: ``restore`` on a clip with the ``identity`` model against decode + encode alone,
and with a real model.

Usage (repo root, venv with the video extra):

    python -m tools.bench_video --frames 240 --size 320x240 --model-frames 48

Makes a noisy test-pattern clip with an audio track (the bundled ffmpeg's ``testsrc2`` with grain,
H.264 at CRF 23), then times, best of ``--rounds``:

(a) ``ffmpeg`` alone transcoding the clip with the encoder settings airtool picks for it (same
    codec, pixel format and bit rate, audio copied): the decoding and encoding any video restore
    must do, in one process;
(b) ``airtool.api.restore`` with the ``identity`` model: (a) plus the raw frames piped out and back,
    the model stage, the segments and the final mux. A ratio (a)/(b) near 1 means the decode,
    model and encode stages overlap instead of adding up;
(c) ``restore`` with ``--model`` (default symunet-s) on the first ``--model-frames`` frames.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from airtool.api import RestoreOptions, restore
from airtool.io.encode import settings_for
from airtool.io.video import ffmpeg_exe, probe
from tools.bench_folder import timed


def make_clip(ffmpeg: str, path: Path, frames: int, size: str, fps: int = 24) -> Path:
    seconds = frames / fps
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}",
                    "-f", "lavfi", "-i", "sine=frequency=440", "-vf", "noise=alls=16:allf=t", "-frames:v", str(frames),
                    "-t", f"{seconds}", "-c:v", "libx264", "-crf", "23", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
                   check=True)
    return path



def transcode(ffmpeg: str, clip: Path, out: Path) -> None:
    """What airtool's encoder would do, as one ffmpeg process, without the frames leaving it."""
    settings = settings_for(ffmpeg, probe(clip, str(clip)))
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(clip), "-map", "0:v:0", "-map", "0:a?", "-c:a", "copy",
                    "-fps_mode", "passthrough", "-c:v", settings.encoder, *settings.args, str(out / clip.name)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--model", default="symunet-s")
    parser.add_argument("--model-frames", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    ffmpeg = ffmpeg_exe("bench")
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp), Path(tmp) / "out"
        clip = make_clip(ffmpeg, folder / "clip.mp4", args.frames, args.size)
        short = make_clip(ffmpeg, folder / "short.mp4", args.model_frames, args.size)
        alone = timed(lambda: transcode(ffmpeg, clip, out), args.rounds, out)
        identity = RestoreOptions(model="identity", device="cpu", threads=args.threads)
        pipeline = timed(lambda: restore([str(clip)], str(out), identity), args.rounds, out)
        model = RestoreOptions(model=args.model, device="cpu", threads=args.threads)
        with_model = timed(lambda: restore([str(short)], str(out), model), 1, out)
    result = {
        "frames": args.frames, "size": args.size,
        "decode_encode_fps": round(args.frames / alone, 1),
        "restore_identity_fps": round(args.frames / pipeline, 1),
        "ratio": round(alone / pipeline, 3),
        f"restore_{args.model}_fps": round(args.model_frames / with_model, 2),
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
