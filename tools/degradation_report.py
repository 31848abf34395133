"""How often DaAIR's per-image degradation report names the right degradation, on real sets.

    python -m tools.degradation_report --data-root ../shared/data [--limit N] [--crop PX] \
        [--weights FILE] [--sets haze,rain,...]

Restores each set with ``airtool restore -m daair`` (through the API, into a temporary folder)
and counts the ``degradation.predicted`` of every image: noisy CBSD68 (sigma 25, made the
papers' way by ``airtool degrade``), Rain100L inputs, SOTS inputs, and sets of degradations the
shipped weights never saw (clean CBSD68, LOL low light, GoPro blur), where any label is wrong.
With ``--crop PX`` each image is first cut to its central PX x PX square (faster; the report
then describes the crop). ``--weights`` reports on a candidate file instead of the shipped one
(to see why its SOTS score moved: an image routed to the rain expert is derained, not dehazed);
``--sets`` keeps only the named sets (by their first word: noise, rain, haze, none, low, blur).
Prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

from airtool.api import DegradeOptions, RestoreOptions, degrade, restore
from airtool.report import FileResult, NullReporter
from airtool.tasks import TASKS


class _Collect(NullReporter):
    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def file(self, result: FileResult) -> None:
        if result.status == "done":
            self.seen[result.extra.get("degradation", {}).get("predicted", "none")] += 1


def _sets(root: Path, work: Path, only: set[str] | None = None) -> dict[str, Path]:
    noisy = work / "cbsd68-sigma25"
    if only is None or "noise" in only:
        degrade([str(root / "CBSD68")], str(noisy), DegradeOptions(ops=(("noise", "25"),), seed=0))
    sets = {
        "noise (CBSD68 + sigma 25)": noisy, "rain (Rain100L inputs)": root / "Rain100L" / "input",
        "haze (SOTS inputs)": root / "SOTS_outdoor_mini" / "input", "none (clean CBSD68)": root / "CBSD68",
        "low light (LOL, not trained)": root / "LOL_eval15_lowonly",
        "blur (GoPro, not trained)": root / "GoPro_blur_sample",
    }
    return {name: folder for name, folder in sets.items() if only is None or name.split()[0] in only}


def _central_crops(files: list[Path], side: int, folder: Path) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True)
    crops = []
    for path in files:
        with Image.open(path) as im:
            im = im.convert("RGB")
            left, top = max((im.width - side) // 2, 0), max((im.height - side) // 2, 0)
            crops.append(folder / f"{path.stem}.png")
            im.crop((left, top, left + min(side, im.width), top + min(side, im.height))).save(crops[-1])
    return crops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N images of each set")
    parser.add_argument("--crop", type=int, default=0, help="restore the central PX x PX square of each image")
    parser.add_argument("--weights", help="a daair weights file (default: the shipped one)")
    parser.add_argument("--sets", help="comma-separated first words of the sets to run (default: all)")
    args = parser.parse_args()
    only = {word.strip() for word in args.sets.split(",")} if args.sets else None
    print("| images | count | " + " | ".join(f"predicted {t}" for t in TASKS[:3]) + " |")
    print("|---|---|" + "---|" * 3)
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder in _sets(args.data_root, Path(tmp), only).items():
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg"))[: args.limit]
            if args.crop:
                files = _central_crops(files, args.crop, Path(tmp) / "crops" / name.split()[0])
            collect = _Collect()
            restore([str(p) for p in files], str(Path(tmp) / "out" / name.split()[0]), RestoreOptions(model="daair", weights=args.weights),
                    collect)
            counts = " | ".join(str(collect.seen[t]) for t in TASKS[:3])
            print(f"| {name} | {sum(collect.seen.values())} | {counts} |", flush=True)


if __name__ == "__main__":
    main()
