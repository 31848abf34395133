"""The manifest entry of a weights file that is the mean of two exported runs.

Usage (repo root, venv active), after ``airtool train export`` wrote each run's file (its entry
inside) into its own folder and ``average_weights`` wrote their mean into weights/:

    python -m tools.mean_manifest weights/daair-aio3.safetensors runs/cand-i runs/cand-j \
        --labels I J --scores runs/scores-ij.json --notes "what it is and what it raised" \
        --interpolate "python -m tools.average_weights ... (then copied to weights/)"

Both runs must have started from the same file (their ``init`` sha256 agree); the new entry
keeps that file's lineage, adds both runs and the mean, and records the file it replaces under
``interpolated.previous`` so no earlier mean is forgotten. ``--scores`` is a JSON object of
benchmark tables (``{"promptir_3task": {"daair": {"SOTS_outdoor_mini": [28.0, 0.961], ...}}}``);
the runs' held-out validation is added from their own entries.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from airtool.engine.training.warm_start import run_summary


def mean_entry(
    a: dict[str, Any], b: dict[str, Any], *, name: str, sha256: str, labels: tuple[str, str], folders: tuple[str, str],
    previous: dict[str, Any] | None, scores: dict[str, Any], notes: str, interpolate: str, t: float = 0.5,
) -> dict[str, Any]:
    """Entry for ``(1 - t) · a + t · b`` built from the two runs' export entries (pure)."""
    if (a.get("init") or {}).get("sha256") != (b.get("init") or {}).get("sha256"):
        raise ValueError("the two runs started from different files; their lineages cannot be merged")
    if a.get("lineage") and b.get("lineage"):  # warm starts: the shared history, then each run
        lineage = [*a["lineage"], b["lineage"][-1]]
    else:
        lineage = [run_summary(a, name), run_summary(b, name)]
    lineage.append({"file": name, "sha256": sha256, "steps": 0, "wall_time_s": 0, "command": interpolate})
    heldout = {label: run["scores"]["heldout_val"] for label, run in zip(labels, (a, b), strict=True)
               if run.get("scores", {}).get("heldout_val")}
    return {
        "sha256": sha256, "model": a["model"], "variant": a["variant"], "setting": a["setting"],
        "config": a["config"], "data": a["data"], "dtype": a["dtype"], "hardware": a["hardware"],
        "init": a.get("init"), "notes": notes,
        "interpolated": {
            "a": _part(a, f"run {labels[0]} ({folders[0]})"), "b": _part(b, f"run {labels[1]} ({folders[1]})"),
            "previous": (previous or {}).get("interpolated"), "t": t,
        },
        "steps": int(a["steps"]) + int(b["steps"]),
        "wall_time_s": round(float(a["wall_time_s"]) + float(b["wall_time_s"]), 1),
        "lineage": lineage,
        "total_steps": sum(int(r.get("steps") or 0) for r in lineage),
        "total_wall_time_s": round(sum(float(r.get("wall_time_s") or 0) for r in lineage), 1),
        "command": {"train": [*a["command"]["train"], *b["command"]["train"]],
                    "export": [a["command"]["export"], b["command"]["export"]], "interpolate": interpolate,
                    "evaluate": _evaluate_command(previous)},
        "scores": {"heldout_val_of_runs": heldout, **scores},
    }


def _evaluate_command(previous: dict[str, Any] | None) -> str:
    """How the file it replaces was scored: the same protocol scores the mean."""
    command = (previous or {}).get("command")
    return command.get("evaluate", "") if isinstance(command, dict) else ""


def _part(entry: dict[str, Any], label: str) -> dict[str, Any]:
    return {"file": label, "sha256": entry["sha256"], "steps": int(entry["steps"])}


def write_mean_entry(mean: Path, runs: tuple[Path, Path], labels: tuple[str, str], scores: dict[str, Any],
                     notes: str, interpolate: str, t: float = 0.5) -> dict[str, Any]:
    """Replace ``mean``'s entry in the manifest beside it by the mean of ``runs``' entries."""
    from airtool.models.weights import read_manifest, sha256_of, update_manifest

    entries = [_export_entry(run / mean.name) for run in runs]
    previous = read_manifest(mean.parent).get("files", {}).get(mean.name)
    sha = sha256_of(mean)
    if previous and previous.get("sha256") == sha:
        raise ValueError(f"{mean}: the manifest already describes this file; copy the mean there first")
    entry = mean_entry(entries[0], entries[1], name=mean.name, sha256=sha, labels=labels, folders=(str(runs[0]), str(runs[1])),
                       previous=previous, scores=scores, notes=notes, interpolate=interpolate, t=t)
    update_manifest(mean.parent, mean.name, entry)
    return entry


def _export_entry(path: Path) -> dict[str, Any]:
    """An exported file's entry: the manifest's beside it, else the one ``airtool train export``
    stored in the file, completed with the file's sha256."""
    from airtool.engine.training.warm_start import with_sha256
    from airtool.models.weights_info import read_manifest_entry, sha256_of

    entry = read_manifest_entry(path)
    if not entry:
        raise ValueError(f"{path}: no manifest entry beside it or inside it")
    return entry if entry.get("sha256") else with_sha256(entry, sha256_of(path))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mean", type=Path, help="the averaged weights file, already in its final folder")
    parser.add_argument("runs", type=Path, nargs=2, help="the two export folders (each with the exported file of that name)")
    parser.add_argument("--labels", nargs=2, default=["A", "B"])
    parser.add_argument("--scores", type=Path, required=True, help="JSON object of benchmark tables")
    parser.add_argument("--notes", required=True)
    parser.add_argument("--interpolate", required=True, help="the command that made the mean")
    parser.add_argument("--t", type=float, default=0.5)
    args = parser.parse_args(argv)
    scores = json.loads(args.scores.read_text())
    entry = write_mean_entry(args.mean, tuple(args.runs), tuple(args.labels), scores, args.notes,
                             args.interpolate, args.t)
    print(f"{args.mean.parent / 'manifest.json'}: {args.mean.name} sha256 {entry['sha256'][:16]}, "
          f"{entry['steps']} steps, lineage of {len(entry['lineage'])}")


if __name__ == "__main__":
    main()
