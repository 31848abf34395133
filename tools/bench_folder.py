"""Whole-pipeline throughput: ``restore`` with the ``identity`` model against decode + encode alone.

Usage (repo root, venv active):

    python -m tools.bench_folder --count 200

Makes ``--count`` PNGs (crops of ../shared/data/CBSD68 when it is there, else synthetic), then
times (a) a plain loop that decodes each file, encodes it again and writes it atomically, the
I/O that any restore must do, and (b) ``airtool.api.restore`` with the identity model, which adds
the model stage and the decode-ahead / writer threads. The best of ``--rounds`` runs of each is
kept. A ratio of 0.9 or more means inference and I/O overlap instead of adding up.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from airtool.api import RestoreOptions, restore
from airtool.io.atomic import write_bytes
from airtool.io.image import encode_image, read_image

REPO = Path(__file__).resolve().parents[1]


def make_inputs(folder: Path, count: int, width: int, height: int) -> None:
    sources = sorted((REPO.parent / "shared" / "data" / "CBSD68").glob("*.png"))
    rng = np.random.default_rng(0)
    for i in range(count):
        if sources:
            img = Image.open(sources[i % len(sources)]).convert("RGB")
            left, top = rng.integers(0, img.width - width + 1), rng.integers(0, img.height - height + 1)
            img = img.crop((left, top, left + width, top + height))
        else:
            img = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        img.save(folder / f"{i:04d}.png")


def decode_encode(src: Path, dst: Path) -> None:
    for path in sorted(src.glob("*.png")):
        pic = read_image(path)
        write_bytes(dst / path.name, encode_image(pic, "PNG", label=str(path)))


def timed(fn, rounds: int, out: Path) -> float:
    best = float("inf")
    for _ in range(rounds):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        make_inputs(src, args.count, args.width, args.height)
        io_only = timed(lambda: decode_encode(src, out), args.rounds, out)
        options = RestoreOptions(model="identity", device="cpu")
        pipeline = timed(lambda: restore([str(src)], str(out), options), args.rounds, out)
        written = len(list(out.glob("*.png")))
    result = {
        "count": args.count, "size": f"{args.width}x{args.height}", "written_by_restore": written,
        "decode_encode_images_per_s": round(args.count / io_only, 1),
        "restore_identity_images_per_s": round(args.count / pipeline, 1),
        "ratio": round(io_only / pipeline, 3),
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
