"""The validation curve of a training run, drawn from its ``metrics.csv`` (no plotting library).

Usage (repo root, venv active):

    python -m tools.plot_metrics runs/symunet-cpu-aio3/metrics.csv --out curve.png

One line per task (held-out PSNR, promptir metrics) and one for their mean, against the step;
several CSVs (``a.csv b.csv``, a run and its continuation) are drawn as one curve.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from PIL import Image, ImageDraw

SERIES = (("val_psnr", "mean", (0, 0, 0)), ("val_psnr_noise", "noise", (31, 119, 180)),
          ("val_psnr_rain", "rain", (44, 160, 44)), ("val_psnr_haze", "haze", (214, 39, 40)),
          ("val_psnr_blur", "blur", (148, 103, 189)), ("val_psnr_lowlight", "lowlight", (255, 127, 14)))
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 720, 360, 56, 92, 28, 40


def read_curves(paths: list[Path]) -> dict[str, list[tuple[int, float]]]:
    """(step, PSNR) points of every series present in the validation rows, in step order."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for path in paths:
        for row in csv.DictReader(path.open(encoding="utf-8")):
            if row.get("event") != "val":
                continue
            for key, _, _ in SERIES:
                if row.get(key):
                    curves.setdefault(key, []).append((int(row["step"]), float(row[key])))
    return {k: sorted(v) for k, v in curves.items()}


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    step = max((high - low) / count, 1e-9)
    magnitude = 10 ** len(str(int(step))) / 10
    nice = min((m * magnitude for m in (1, 2, 2.5, 5, 10)), key=lambda m: abs(m - step))
    first = (low // nice + 1) * nice
    return [first + i * nice for i in range(count + 1) if first + i * nice <= high]


def draw(curves: dict[str, list[tuple[float, float]]], title: str, x_label: str = "step") -> Image.Image:
    if not curves:
        raise SystemExit("plot_metrics: no validation rows in the CSV")
    points = [p for series in curves.values() for p in series]
    x_max = max(s for s, _ in points) or 1
    y_lo, y_hi = min(v for _, v in points) - 0.5, max(v for _, v in points) + 0.5
    im = Image.new("RGB", (WIDTH, HEIGHT), "white")
    pen = ImageDraw.Draw(im)
    box = (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM)

    def xy(step: float, value: float) -> tuple[float, float]:
        return (box[0] + (box[2] - box[0]) * step / x_max, box[3] - (box[3] - box[1]) * (value - y_lo) / (y_hi - y_lo))

    pen.rectangle(box, outline=(0, 0, 0))
    for value in _ticks(y_lo, y_hi):
        y = xy(0, value)[1]
        pen.line((box[0], y, box[2], y), fill=(225, 225, 225))
        pen.text((4, y - 6), f"{value:.1f}", fill="black")
    for step in _ticks(0, x_max):
        x = xy(step, y_lo)[0]
        pen.text((x - 10, box[3] + 6), f"{step:g}", fill="black")
    pen.text((box[0], 4), title, fill="black")
    pen.text((box[2] - 8 * len(x_label), HEIGHT - 16), x_label, fill="black")
    pen.text((4, TOP - 12), "dB", fill="black")
    for i, (key, label, colour) in enumerate(s for s in SERIES if s[0] in curves):
        line = [xy(step, value) for step, value in curves[key]]
        if len(line) > 1:
            pen.line(line, fill=colour, width=3 if key == "val_psnr" else 2)
        for x, y in line:
            pen.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
        last = curves[key][-1][1]
        pen.text((box[2] + 8, TOP + 16 * i), f"{label} {last:.2f}", fill=colour)
    return im


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default="held-out validation PSNR (promptir metrics)")
    args = parser.parse_args(argv)
    draw(read_curves(args.csv), args.title).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
