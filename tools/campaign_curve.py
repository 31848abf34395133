"""The SymUNet campaign's curve: held-out PSNR per task against steps and core-hours, kept in
``docs/campaign-curve.csv`` (the campaign's memory of its curve, whatever happens to ``runs/``)
and drawn to ``docs/campaign-curve.png``.

Usage (repository root, after or during a campaign session):

    python -m tools.campaign_curve runs/symunet-campaign

Each validation of the run is added to the CSV (a step already there is replaced). Core-hours
are the training process's CPU seconds / 3600, counted from the campaign's first step: a
validation's own ``cpu_time_s`` plus the core-hours of the row at the step its run started
from. With no CSV yet, the curve starts from the shipped weights' manifest entry. A run that starts where the curve has no row (a
network grown from a smaller one) takes ``--start-hours``: every core-hour spent to get there.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

COLUMNS = ("step", "core_hours", "val_psnr", "val_psnr_noise", "val_psnr_rain", "val_psnr_haze", "source")
CSV_PATH, PNG_PATH = Path("docs/campaign-curve.csv"), Path("docs/campaign-curve.png")
WEIGHTS = Path("weights/symunet-aio3.safetensors")
TASK_SERIES = ("val_psnr", "val_psnr_noise", "val_psnr_rain", "val_psnr_haze")

Row = dict[str, str]


def read_rows(path: Path) -> dict[int, Row]:
    if not path.is_file():
        return {}
    return {int(row["step"]): row for row in csv.DictReader(path.open(encoding="utf-8"))}


def seed_row(weights: Path) -> Row:
    """The shipped file's held-out validation, for a curve that has no row yet. Its core-hours
    are the lineage's (or the wall time of runs from before core-hours were kept: one thread)."""
    entry = json.loads((weights.parent / "manifest.json").read_text())["files"][weights.name]
    val = entry["scores"]["heldout_val"]
    runs = entry.get("lineage") or [entry]
    hours = sum(float(r.get("core_hours") or (r.get("wall_time_s") or 0) / 3600) for r in runs)
    return _row(int(entry["steps"]), hours, val, f"{weights.name} (manifest)")


def _row(step: int, hours: float, val: dict, source: str) -> Row:
    row = {"step": str(step), "core_hours": f"{hours:.3f}", "source": source}
    row.update({key: f"{float(val[key]):.4f}" for key in TASK_SERIES if key in val})
    return row


def run_rows(run: Path, known: dict[int, Row], start_hours: float | None = None) -> list[Row]:
    """The run's validations, placed after the row at the step the run started from, or, for a
    start the curve has no row for (a grown network), at ``start_hours``."""
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    vals = [e for e in events if e.get("event") == "val"]
    if not vals:
        return []
    start = min(int(e["step"]) for e in vals)
    source = f"{run.name} from step {start}"  # one run folder name may serve several campaign runs
    earlier = start in known and known[start]["source"] != source  # the file this run started from
    offset = float(known[start]["core_hours"]) if earlier else (start_hours or 0.0)
    changes = heldout_changes(events)
    rows = []
    for event in vals:
        step = int(event["step"])
        if step == start and earlier:
            continue  # the starting file's own validation: already on the curve
        since = [at for at in changes if at < step]
        tag = f"; held-out crops changed at step {since[-1]}" if since else ""
        rows.append(_row(step, offset + float(event.get("cpu_time_s", 0.0)) / 3600, event, source + tag))
    return rows


def heldout_changes(events: list[dict]) -> list[int]:
    """Steps at which a resumed run validated on other held-out crops than before (a changed data
    mix): its start event scores the unrestored held-out inputs differently. Points on either side
    of such a step measure different crops."""
    changes, before = [], None
    for event in events:
        if event.get("event") != "start" or event.get("val_input_psnr") is None:
            continue
        now = float(event["val_input_psnr"])
        if before is not None and abs(now - before) > 1e-6:
            changes.append(int(event["step"]))
        before = now
    return changes


def write(rows: dict[int, Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        for step in sorted(rows):
            writer.writerow({c: rows[step].get(c, "") for c in COLUMNS})


def plot(rows: dict[int, Row], path: Path) -> None:
    """Two panels, against steps and against core-hours (the plot_metrics style)."""
    from PIL import Image

    from tools.plot_metrics import draw

    def curves(x: str) -> dict[str, list[tuple[float, float]]]:
        return {key: [(float(r[x]), float(r[key])) for _, r in sorted(rows.items()) if r.get(key)]
                for key in TASK_SERIES}

    title = "SymUNet campaign: held-out PSNR (promptir metrics)"
    top, bottom = draw(curves("step"), title), draw(curves("core_hours"), "", x_label="core-hours")
    sheet = Image.new("RGB", (top.width, top.height + bottom.height), "white")
    sheet.paste(top, (0, 0))
    sheet.paste(bottom, (0, top.height))
    sheet.save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="*", help="campaign run folders whose validations to add")
    parser.add_argument("--csv", type=Path, default=CSV_PATH)
    parser.add_argument("--png", type=Path, default=PNG_PATH)
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--start-hours", type=float, help="core-hours spent before a run whose start has no row")
    args = parser.parse_args(argv)
    rows = read_rows(args.csv) or {int(r["step"]): r for r in [seed_row(args.weights)]}
    for run in args.runs:
        rows.update({int(r["step"]): r for r in run_rows(run, rows, args.start_hours)})
    write(rows, args.csv)
    plot(rows, args.png)
    print(f"wrote {args.csv} ({len(rows)} points) and {args.png}")


if __name__ == "__main__":
    main()
