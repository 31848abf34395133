"""How often ``airtool.degradation_signs`` is right: false alarms on photos without low light or
blur (clean, and with the noise, rain and haze the shipped weights were trained for) and misses
on photos with them (LOL and LIME low light, the GoPro blur frame).

    python -m tools.untrained_signs                 # the shared benchmark sets
    python -m tools.untrained_signs --synthetic     # also CBSD68 degraded by airtool degrade

``--synthetic`` adds CBSD68 with each trained degradation (false alarms) and with blur and low
light at two strengths (misses), made with ``airtool degrade`` (seed 0) in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# (name, folder under the data root, the task its images show: None = neither sign should fire)
SHARED_SETS = [
    ("CBSD68", "CBSD68", None),
    ("clean_color", "train/clean_color", None),
    ("BSDS500_trainval", "train/BSDS500_trainval", None),
    ("Set12", "Set12", None),
    ("Rain100L input", "Rain100L/input", None),
    ("Rain100L target", "Rain100L/target", None),
    ("SOTS input", "SOTS_outdoor_mini/input", None),
    ("LOL low", "LOL_eval15_lowonly", "lowlight"),
    ("LIME", "LIME", "lowlight"),
    ("GoPro blur", "GoPro_blur_sample", "blur"),
]
# (name, airtool degrade arguments, task) applied to CBSD68
SYNTHETIC_SETS = [
    ("CBSD68 noise 25", ["--noise", "25"], None),
    ("CBSD68 noise 50", ["--noise", "50"], None),
    ("CBSD68 rain medium", ["--rain", "medium"], None),
    ("CBSD68 haze medium", ["--haze", "medium"], None),
    ("CBSD68 blur light", ["--blur", "light"], "blur"),
    ("CBSD68 blur shake", ["--blur", "shake"], "blur"),
    ("CBSD68 lowlight light", ["--lowlight", "light"], "lowlight"),
    ("CBSD68 lowlight medium", ["--lowlight", "medium"], "lowlight"),
]


@dataclass(frozen=True)
class SetResult:
    name: str
    task: str | None  # what its images show (None: no low light, no blur)
    images: int
    flagged: dict[str, int]  # sign -> images showing it
    wrong: int  # false alarms (task None: any sign) or misses (its own sign absent)

    @property
    def rate(self) -> float:
        return self.wrong / self.images if self.images else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="The shared data folder (default: $AIRTOOL_DATA, else ../shared/data).")
    parser.add_argument("--synthetic", action="store_true", help="Also CBSD68 degraded with airtool degrade.")
    parser.add_argument("--json", help="Also write the results to this file.")
    args = parser.parse_args(argv)
    data = Path(args.data or os.environ.get("AIRTOOL_DATA") or ROOT.parent / "shared" / "data")
    results = [measure(name, data / folder, task) for name, folder, task in SHARED_SETS if (data / folder).is_dir()]
    if args.synthetic:
        with tempfile.TemporaryDirectory(prefix="airtool-signs-") as tmp:
            for name, degrade_args, task in SYNTHETIC_SETS:
                folder = Path(tmp) / name.replace(" ", "-")
                subprocess.run([sys.executable, "-m", "airtool", "degrade", str(data / "CBSD68"), str(folder),
                                *degrade_args, "--seed", "0", "--quiet"], cwd=ROOT, check=True)
                results.append(measure(name, folder, task))
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) | {"rate": r.rate} for r in results], indent=2) + "\n")
    return 0


def measure(name: str, folder: Path, task: str | None) -> SetResult:
    """Read every picture of ``folder`` as ``restore`` does and count the signs it shows."""
    from airtool.degradation_signs import looks_like
    from airtool.io.image import read_image

    flagged: dict[str, int] = {}
    images = wrong = 0
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        signs = looks_like(read_image(path, str(path), native=True).pixels)
        images += 1
        for sign in signs:
            flagged[sign] = flagged.get(sign, 0) + 1
        wrong += bool(signs) if task is None else task not in signs
    return SetResult(name, task, images, flagged, wrong)


def print_table(results: list[SetResult]) -> None:
    print(f"{'set':24s} {'shows':9s} {'images':>6s} {'lowlight':>8s} {'blur':>5s}  result")
    for r in results:
        what = "false alarms" if r.task is None else "missed"
        print(f"{r.name:24s} {r.task or '-':9s} {r.images:6d} {r.flagged.get('lowlight', 0):8d} "
              f"{r.flagged.get('blur', 0):5d}  {what} {r.wrong}/{r.images} ({r.rate:.0%})")
    for label, rows in (("false alarms", [r for r in results if r.task is None]),
                        ("misses", [r for r in results if r.task is not None])):
        wrong, total = sum(r.wrong for r in rows), sum(r.images for r in rows)
        print(f"all {label}: {wrong}/{total} ({wrong / max(total, 1):.1%})")


if __name__ == "__main__":
    sys.exit(main())
