"""Peak host memory of ``airtool restore`` on one large image, tiled on the CPU.

Usage (repo root, venv active):

    python -m tools.bench_memory --model symunet-s --sizes 1500x1000,3000x2000,6000x4000
    python -m tools.bench_memory --model identity --video-seconds 3,30 --video-size 160x120

For each size a synthetic RGB PNG is written to a temporary folder, then ``python -m airtool
restore`` runs on it in a child process; its peak resident set size (``ru_maxrss`` of the child)
and wall time are reported. Models without shipped weights (``--random-weights``) run on random
weights, which cost the same memory. With ``--video-seconds``, clips of those lengths (24 fps, with
audio; needs the video extra) are restored instead of images: the peak should not depend on the length.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_image(path: Path, width: int, height: int) -> None:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width, yy / height, ((xx + yy) % 97) / 96], axis=-1) * 255
    noise = np.random.default_rng(0).normal(0, 12, base.shape).astype(np.float32)
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path, compress_level=1)


def random_weights(model: str, folder: Path) -> Path:
    import torch

    from airtool.models import get_spec
    from airtool.models.weights import save_weights

    torch.manual_seed(0)
    path = folder / f"{model}-random.safetensors"
    spec = get_spec(model)
    save_weights(spec.create(), path, model=spec.family or model, variant=spec.default_variant, config={})
    return path


def peak_child(cmd: list[str]) -> tuple[int, float, int]:
    """Run ``cmd`` in a child; its peak RSS in bytes, wall seconds and exit code."""
    pid = os.fork()
    if pid == 0:  # the child: become the command, so ru_maxrss is the command's alone
        os.execvp(cmd[0], cmd)
    start = time.perf_counter()
    _, status, usage = os.wait4(pid, 0)
    return usage.ru_maxrss * 1024, time.perf_counter() - start, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="symunet-s")
    parser.add_argument("--sizes", default="6000x4000")
    parser.add_argument("--tile", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--video-seconds", default="", help="e.g. 3,30: restore clips of these lengths instead")
    parser.add_argument("--video-size", default="160x120")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        extra = ["-w", str(random_weights(args.model, folder))] if args.random_weights else []
        if args.video_seconds:
            videos(args, folder, extra)
            return
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.lower().split("x"))
            src, dst = folder / f"in-{size}.png", folder / f"out-{size}.png"
            make_image(src, width, height)
            cmd = [sys.executable, "-m", "airtool", "restore", str(src), str(dst), "--model", args.model, *extra,
                   "--device", "cpu", "--tile", args.tile, "--precision", args.precision,
                   "--threads", str(args.threads), "--quiet"]
            rss, seconds, code = peak_child(cmd)
            row = {"model": args.model, "size": size, "megapixels": round(width * height / 1e6, 1),
                   "tile": args.tile, "precision": args.precision, "peak_rss_mb": round(rss / 2**20),
                   "seconds": round(seconds, 1), "exit_code": code}
            sys.stdout.write(json.dumps(row) + "\n")
            sys.stdout.flush()


def videos(args: argparse.Namespace, folder: Path, extra: list[str]) -> None:
    from airtool.io.video import ffmpeg_exe
    from tools.bench_video import make_clip

    ffmpeg = ffmpeg_exe("bench")
    for seconds in args.video_seconds.split(","):
        clip = make_clip(ffmpeg, folder / f"clip-{seconds}s.mp4", round(float(seconds) * 24), args.video_size)
        cmd = [sys.executable, "-m", "airtool", "restore", str(clip), str(folder / f"out-{seconds}"), "--model", args.model,
               *extra, "--device", "cpu", "--tile", args.tile, "--precision", args.precision,
               "--threads", str(args.threads), "--quiet"]
        rss, wall, code = peak_child(cmd)
        row = {"model": args.model, "video_seconds": float(seconds), "size": args.video_size,
               "peak_rss_mb": round(rss / 2**20), "seconds": round(wall, 1), "exit_code": code}
        sys.stdout.write(json.dumps(row) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
