"""The README's before/after picture: the bundled examples restored by one model, side by side.

Usage (repo root, venv active):

    python -m tools.before_after --model symunet --out airtool/examples/before_after.jpg

Each bundled example (``airtool/examples/noisy.png``: CBSD68-style σ25 noise; ``rainy.png``: a
Rain100L input) is restored through the Python API exactly as ``airtool restore`` would (default
precision and tiling), then shown beside its input with a caption. Writes a JPEG (quality 90).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

EXAMPLES = (("noisy.png", "noisy input (sigma 25)"), ("rainy.png", "rainy input (Rain100L)"))
CAPTION = 16  # pixels of caption band above each panel


def restored_copy(model: str, source: Path, folder: Path) -> Path:
    from airtool import api

    out = folder / source.name
    summary = api.restore([str(source)], str(out), api.RestoreOptions(model=model))
    if summary.failed:
        raise SystemExit(f"before_after: {source}: restore failed")
    return out


def panel(path: Path, caption: str) -> Image.Image:
    with Image.open(path) as im:
        picture = im.convert("RGB")
    canvas = Image.new("RGB", (picture.width, picture.height + CAPTION), "white")
    canvas.paste(picture, (0, CAPTION))
    ImageDraw.Draw(canvas).text((3, 2), caption, fill="black")
    return canvas


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="symunet")
    parser.add_argument("--out", type=Path, default=Path("airtool/examples/before_after.jpg"))
    args = parser.parse_args(argv)
    examples = Path(__file__).resolve().parents[1] / "airtool" / "examples"
    panels = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, caption in EXAMPLES:
            panels.append(panel(examples / name, caption))
            panels.append(panel(restored_copy(args.model, examples / name, Path(tmp)), f"airtool restore --model {args.model}"))
    gap = 2
    sheet = Image.new("RGB", (sum(p.width for p in panels) + gap * (len(panels) - 1), max(p.height for p in panels)), "white")
    x = 0
    for p in panels:
        sheet.paste(p, (x, 0))
        x += p.width + gap
    sheet.save(args.out, quality=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
