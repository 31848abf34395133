"""The README's models table, generated from weights/manifest.json (the scores live there only).

    python -m tools.models_table           # rewrite the block between the README's markers
    python -m tools.models_table --check   # exit 1 if the README's block differs from the manifest

Rows: the degraded input itself, each shipped weights file's own scores (``scores.promptir_3task``,
the entry whose key is the file's model), classical CBM3D measured side by side
(``scores.cbm3d_side_by_side``), then the papers' published PSNR (the manifest's ``published``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "weights" / "manifest.json"
README = ROOT / "README.md"
START = "<!-- models-table:start -->"
END = "<!-- models-table:end -->"

# (column header, the set's key in the manifest's scores)
COLUMNS = [
    ("SOTS (5 pairs)", "SOTS_outdoor_mini"),
    ("Rain100L (50 pairs)", "Rain100L_50"),
    ("CBSD68 σ15", "CBSD68_s15"),
    ("σ25", "CBSD68_s25"),
    ("σ50", "CBSD68_s50"),
    ("avg", "avg"),
]
# The papers measured other versions of two sets: their key, the column it goes in, what to say.
PUBLISHED_SETS = {
    "SOTS_outdoor": ("SOTS_outdoor_mini", "full set"),
    "Rain100L_100": ("Rain100L_50", "100 pairs"),
}
MISSING = "—"


def _score(value: Any) -> str:
    """[psnr, ssim] as '28.75/0.971'; a bare number as '28.75'."""
    if isinstance(value, (list, tuple)):
        psnr, ssim = value
        return f"{psnr:.2f}/{ssim:.3f}"
    return f"{value:.2f}"


def _row(label: str, cells: dict[str, str]) -> str:
    return "| " + " | ".join([label, *(cells.get(key, MISSING) for _, key in COLUMNS)]) + " |"


def _scored(scores: dict[str, Any]) -> dict[str, str]:
    return {key: _score(scores[key]) for _, key in COLUMNS if key in scores}


def render(manifest: dict) -> str:
    """The Markdown table of the shipped files' scores, CBM3D and the papers' numbers."""
    files = manifest.get("files", {})
    lines = [
        "| model | " + " | ".join(header for header, _ in COLUMNS) + " |",
        "|" + "---|" * (len(COLUMNS) + 1),
    ]
    rows: list[str] = []
    identity = None
    cbm3d = []
    for name in sorted(files):
        entry = files[name]
        scores = entry.get("scores", {})
        table = scores.get("promptir_3task", {})
        if identity is None and "identity" in table:
            identity = table["identity"]
        model = entry.get("model")
        if model in table:
            rows.append(_row(f"`{model}` (`{name}`)", _scored(table[model])))
        side = scores.get("cbm3d_side_by_side")
        if side:
            images = f", {side['images']} images" if "images" in side else ""
            cbm3d.append(_row(f"CBM3D (classical, measured side by side{images})", _scored(side)))
    if identity is not None:
        lines.append(_row("the input, unrestored", _scored(identity)))
    lines += rows + cbm3d
    for paper, sets in manifest.get("published", {}).get("psnr", {}).items():
        cells = {}
        for key, value in sets.items():
            column, note = PUBLISHED_SETS.get(key, (key, ""))
            cells[column] = _score(value) + (f" ({note})" if note else "")
        lines.append(_row(f"{paper} paper (PSNR only)", cells))
    return "\n".join(lines) + "\n"


def readme_block(text: str) -> str:
    """What stands between the README's markers now."""
    if START not in text or END not in text:
        raise ValueError(f"README.md has no {START} ... {END} block")
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def with_block(text: str, table: str) -> str:
    """``text`` with the block between the markers replaced by ``table``."""
    readme_block(text)
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{START}\n{table}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.models_table", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's table is not the manifest's")
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    table = render(json.loads(args.manifest.read_text(encoding="utf-8")))
    text = args.readme.read_text(encoding="utf-8")
    if args.check:
        if readme_block(text) != table:
            print(f"{args.readme}: the models table differs from {args.manifest}; run python -m tools.models_table",
                  file=sys.stderr)
            return 1
        return 0
    new = with_block(text, table)
    if new != text:
        args.readme.write_text(new, encoding="utf-8")
        print(f"{args.readme}: models table rewritten from {args.manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
