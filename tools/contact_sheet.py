"""Contact sheet of every degradation op at each preset, for eyeballing the presets.

Rows: noise (sigma 15/25/50), rain, haze, blur (camera shake), low light (light/medium/heavy),
jpeg (quality 10/30/60). Columns: clean, three levels, and a real degraded image from
../shared/data for comparison where one exists (Rain100L, SOTS-outdoor, GoPro, LOL). Blur tiles
show their PSF top left; low-light tiles a full-resolution centre crop brightened 6x.

    python -m tools.contact_sheet [--image PATH] [--out airtool/examples/contact_sheet.jpg] [--seed 0]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from airtool.degrade import OPS
from airtool.degrade.chain import file_rng

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
TILE = (320, 214)  # 2/3 of a 481x321 BSD image, so noise and JPEG blocks stay visible
LABEL_H = 18
MAX_BYTES = 400_000

# (op, row title, [(column label, preset, fixed keys)], reference image or None)
ROWS: list[tuple[str, str, list[tuple[str, str | None, dict]], str | None]] = [
    ("noise", "noise", [(f"sigma={s}", None, {"sigma": s}) for s in (15, 25, 50)], None),
    ("rain", "rain", [(p, p, {}) for p in ("light", "medium", "heavy")], "Rain100L/input/022.png"),
    ("haze", "haze", [(p, p, {}) for p in ("light", "medium", "heavy")], "SOTS_outdoor_mini/input/0001.jpg"),
    ("blur", "blur shake", [(p, p, {}) for p in ("light", "medium", "heavy")],
     "GoPro_blur_sample/GOPR0384_11_00-000001.png"),
    ("lowlight", "low light", [(p, p, {}) for p in ("light", "medium", "heavy")], "LOL_eval15_lowonly/1.png"),
    ("jpeg", "jpeg", [(f"quality={q}", None, {"quality": q}) for q in (10, 30, 60)], None),
]


def load(path: Path) -> torch.Tensor:
    """RGB image as a (3, H, W) float tensor in [0, 1]."""
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def to_tile(img: torch.Tensor) -> Image.Image:
    """Tensor -> PIL tile of size TILE (aspect kept by centre crop)."""
    arr = (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    im = Image.fromarray(arr)
    scale = max(TILE[0] / im.width, TILE[1] / im.height)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    left, top = (im.width - TILE[0]) // 2, (im.height - TILE[1]) // 2
    return im.crop((left, top, left + TILE[0], top + TILE[1]))


def kernel_inset(kernel: list[list[float]], size: int = 56) -> Image.Image:
    """The blur PSF, normalised to its peak, as a small framed grey image."""
    k = np.asarray(kernel)
    im = Image.fromarray((k / k.max() * 255).astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST)
    framed = Image.new("L", (size + 2, size + 2), 255)
    framed.paste(im, (1, 1))
    return framed.convert("RGB")


def bright_inset(img: torch.Tensor, gain: float = 6.0, size: tuple[int, int] = (120, 80)) -> Image.Image:
    """A full-resolution centre crop brightened ``gain`` times, to show low-light noise."""
    _, h, w = img.shape
    top, left = (h - size[1]) // 2, (w - size[0]) // 2
    crop = (img[:, top : top + size[1], left : left + size[0]] * gain).clamp(0, 1)
    arr = (crop.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    framed = Image.new("RGB", (size[0] + 2, size[1] + 2), "white")
    framed.paste(Image.fromarray(arr), (1, 1))
    return framed


def labelled(tile: Image.Image, text: str, font: ImageFont.ImageFont) -> Image.Image:
    """Tile with a caption bar above it."""
    out = Image.new("RGB", (tile.width, tile.height + LABEL_H), "white")
    out.paste(tile, (0, LABEL_H))
    ImageDraw.Draw(out).text((4, 2), text, fill="black", font=font)
    return out


def short(params: object, op: str) -> str:
    """A few key numbers for the caption."""
    d = params.__dict__
    keys = {
        "rain": (("length", "L"), ("angle", "ang"), ("layers", "n")),
        "haze": (("beta", "beta"), ("A", "A")),
        "blur": (("length", "L"),),
        "lowlight": (("ev", "ev"), ("gamma", "g")),
    }.get(op, ())
    return " ".join(f"{short}={d[k]:.2g}" for k, short in keys)


def build(image: Path, seed: int) -> Image.Image:
    """The whole sheet as one PIL image."""
    font = ImageFont.load_default(size=13)
    clean = load(image)
    rows = []
    for op, title, cols, ref in ROWS:
        tiles = [labelled(to_tile(clean), f"{title}: clean", font)]
        for label, preset, fixed in cols:
            params = OPS[op].sample(file_rng(seed, f"{op}/{label}"), preset, **fixed)
            tile = to_tile(OPS[op].apply(clean, params))
            if op == "blur":
                tile.paste(kernel_inset(params.kernel), (4, 4))
            if op == "lowlight":
                tile.paste(bright_inset(OPS[op].apply(clean, params)), (4, 4))
            tiles.append(labelled(tile, f"{title} {label}  {short(params, op)}", font))
        if ref is not None and (DATA / ref).is_file():
            real = load(DATA / ref)
            tile = to_tile(real)
            if op == "lowlight":
                tile.paste(bright_inset(real), (4, 4))
            tiles.append(labelled(tile, f"real: {ref.split('/')[0]}", font))
        rows.append(tiles)
    ncol = max(len(r) for r in rows)
    sheet = Image.new("RGB", (ncol * (TILE[0] + 4), len(rows) * (TILE[1] + LABEL_H + 4)), "white")
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            sheet.paste(tile, (c * (TILE[0] + 4), r * (TILE[1] + LABEL_H + 4)))
    return sheet


def save_under(sheet: Image.Image, out: Path, max_bytes: int = MAX_BYTES) -> int:
    """Write JPEG at the highest quality (90 down to 50) that fits ``max_bytes``."""
    for quality in range(90, 45, -5):
        buf = io.BytesIO()
        sheet.save(buf, format="JPEG", quality=quality, optimize=True)
        if buf.tell() <= max_bytes:
            break
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    return quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=DATA / "CBSD68" / "219090.png")
    parser.add_argument("--out", type=Path, default=REPO / "airtool" / "examples" / "contact_sheet.jpg")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    save_under(build(args.image, args.seed), args.out)


if __name__ == "__main__":
    main()
