"""Pack training folders into a small folder that can travel with a command to a GPU machine.

Usage (repo root):

    python -m tools.pack_train_data --out .data/train-pack --budget-mb 60

Folders are taken in the order given (default: RainTrainL, Train400, BSDS500_trainval), each
re-encoded losslessly (PNG -> lossless WebP, exactly the same pixels; JPEG files copied byte for
byte), under the same relative paths as in the data root, so a preset's ``sources`` work on the
pack with ``--set data.root=.data/train-pack``. When a folder does not fit the budget, a paired
folder keeps as many pairs as fit (in file-name order) and the packing stops. ``PACK.json``
records what is in the pack: folders, files, bytes, and what was left out.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
from pathlib import Path

DEFAULT_FOLDERS = ("train/RainTrainL", "train/Train400", "train/BSDS500_trainval")
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def lossless_bytes(path: Path) -> tuple[bytes, str]:
    """(encoded bytes, suffix): JPEG and WebP as they are, anything else as lossless WebP."""
    if path.suffix.lower() in (".jpg", ".jpeg", ".webp"):
        return path.read_bytes(), path.suffix.lower()
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        if im.mode not in ("RGB", "RGBA", "L"):
            raise SystemExit(f"pack_train_data: {path}: mode {im.mode} has no lossless WebP form")
        buf = io.BytesIO()
        im.convert("RGB" if im.mode == "L" else im.mode).save(buf, "WEBP", lossless=True, quality=100, method=4)
    data = buf.getvalue()
    return (data, ".webp") if len(data) < path.stat().st_size else (path.read_bytes(), path.suffix.lower())


def units(folder: Path) -> list[list[Path]]:
    """The files of a folder in packing order: pairs (input, target) for a paired folder."""
    def images(where: Path) -> list[Path]:
        return sorted(p for p in where.iterdir() if p.suffix.lower() in SUFFIXES)

    if (folder / "input").is_dir() and (folder / "target").is_dir():
        targets = {p.stem: p for p in images(folder / "target")}
        return [[p, targets[p.stem]] for p in images(folder / "input") if p.stem in targets]
    return [[p] for p in images(folder)]


def pack(root: Path, out: Path, folders: list[str], budget: int) -> dict:
    """Write the pack under ``out`` (replaced); returns the PACK.json record."""
    if out.exists():
        shutil.rmtree(out)
    used, record = 0, {"root": str(root), "budget_bytes": budget, "folders": [], "left_out": []}
    for rel in folders:
        source = root / rel
        if not source.is_dir():
            raise SystemExit(f"pack_train_data: {source}: folder not found")
        todo = units(source)
        encoded = ([(src, *lossless_bytes(src)) for src in unit] for unit in todo)  # lazily: stop at the budget
        kept = 0
        for unit in encoded:
            size = sum(len(data) for _, data, _ in unit)
            if used + size > budget:
                break
            for src, data, suffix in unit:
                dest = out / src.relative_to(root).with_suffix(suffix)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
            used, kept = used + size, kept + 1
        record["folders"].append({"path": rel, "units": kept, "of": len(todo)})
        if kept < len(todo):
            record["left_out"] = [f"{rel}: {len(todo) - kept} of {len(todo)}"] + [
                f"{f}: all" for f in folders[folders.index(rel) + 1:]]
            break
    record["bytes"] = used
    (out / "PACK.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("AIRTOOL_DATA", "../shared/data")))
    parser.add_argument("--out", type=Path, default=Path(".data/train-pack"))
    parser.add_argument("--budget-mb", type=float, default=60.0, help="MiB for the whole pack")
    parser.add_argument("--folders", default=",".join(DEFAULT_FOLDERS), help="relative to --root, in priority order")
    args = parser.parse_args(argv)
    record = pack(args.root, args.out, args.folders.split(","), int(args.budget_mb * 2**20))
    for entry in record["folders"]:
        print(f"{entry['path']}: {entry['units']} of {entry['of']}")
    print(f"{args.out}: {record['bytes'] / 2**20:.1f} MiB; left out: {', '.join(record['left_out']) or 'nothing'}")


if __name__ == "__main__":
    main()
