"""Ship an exported campaign candidate: copy it into weights/ and write its manifest entry.

Usage (repository root, venv active), after ``airtool train export`` and ``tools.score_weights``:

    python -m tools.ship_weights runs/cand/symunet-aio3.safetensors \\
        --scores runs/cand/scores.json --label cand --notes "what it is, where it stands"

The candidate is first compared with the shipped file on the campaign's held-out crops (never the
evaluation sets); it ships only when it beats it by ``--min-gain`` dB (the campaign's rule), or
with ``--any-gain`` (the last ship before the work pauses). The new entry is the one the export
stored in the file, with its sha256, its held-out scores, its public scores (``--scores``, the
JSON ``score_weights`` writes; ``--label`` picks its column) and what it replaces. Rows that
describe the benchmark rather than the file (the unrestored input, CBM3D measured side by side)
are carried over. Then run ``python -m tools.models_table`` and ``python -m tools.gen_model_facts``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

# Rows of the shipped entry's scores that measure the benchmark, not the file: kept across ships.
BENCHMARK_ROWS = ("cbm3d_side_by_side",)
BENCHMARK_COLUMNS = ("identity",)


def ship_entry(
    candidate: dict[str, Any], previous: dict[str, Any] | None, *, sha256: str, heldout: dict[str, float],
    public: dict[str, list[float]], notes: str, evaluate: str,
) -> dict[str, Any]:
    """The manifest entry of ``candidate`` (its export entry) replacing ``previous`` (pure)."""
    previous = previous or {}
    old_scores = previous.get("scores", {})
    model = candidate["model"]
    table = {k: v for k, v in old_scores.get("promptir_3task", {}).items() if k in BENCHMARK_COLUMNS}
    table[model] = public
    scores = {k: v for k, v in old_scores.items() if k in BENCHMARK_ROWS}
    scores["heldout_val"] = {"step": int(candidate["steps"]), **heldout}
    scores["promptir_3task"] = table
    entry = {**candidate, "sha256": sha256, "notes": notes, "scores": scores}
    entry["command"] = {**candidate.get("command", {}), "evaluate": evaluate}
    if previous:
        entry["replaces"] = {
            "sha256": previous.get("sha256"), "steps": previous.get("steps"),
            "heldout_val": old_scores.get("heldout_val"),
            "promptir_3task": old_scores.get("promptir_3task", {}).get(model),
        }
    return entry


def heldout_gain(candidate: dict[str, float], shipped: dict[str, float]) -> float:
    """Mean held-out PSNR gain in dB, the campaign's ship criterion."""
    return candidate["val_psnr"] - shipped["val_psnr"]


def ship(
    path: Path, weights_dir: Path, *, scores: dict[str, Any], label: str, notes: str, evaluate: str | None,
    min_gain: float | None, preset: str = "symunet-campaign",
) -> dict[str, Any]:
    """Compare on held-out crops, then copy ``path`` into ``weights_dir`` and update its manifest.
    ``evaluate`` (how ``scores`` was measured) defaults to the ``score_weights`` command for ``label``."""
    from airtool.io.atomic import atomic_path
    from airtool.models.weights import read_manifest, sha256_of, update_manifest
    from airtool.models.weights_info import read_manifest_entry
    from tools.heldout import heldout_scores

    candidate = read_manifest_entry(path)
    if not candidate:
        raise ValueError(f"{path}: no manifest entry inside it; export it with airtool train export")
    target = weights_dir / path.name
    previous = read_manifest(weights_dir).get("files", {}).get(path.name)
    public = scores.get("promptir_3task", {}).get(label)
    if not public:
        raise ValueError(f"--scores has no promptir_3task column {label!r}")
    mine = heldout_scores(path, preset, candidate["model"])
    if target.exists():
        theirs = heldout_scores(target, preset, candidate["model"])
        gain = heldout_gain(mine, theirs)
        print(f"held-out: {theirs['val_psnr']:.2f} -> {mine['val_psnr']:.2f} dB ({gain:+.2f})")
        if min_gain is not None and gain < min_gain:
            raise ValueError(f"{path}: held-out gain {gain:+.2f} dB is below {min_gain} dB; not shipped")
    evaluate = evaluate or (f"python -m tools.score_weights --model {candidate['model']} {label}={path} --jobs 2 "
                            "(airtool evaluate --precision fp32 --json per set, one thread each)")
    entry = ship_entry(candidate, previous, sha256=sha256_of(path), heldout=mine, public=public,
                       notes=notes, evaluate=evaluate)
    with atomic_path(target) as tmp:
        shutil.copyfile(path, tmp)
    update_manifest(weights_dir, path.name, entry)
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidate", type=Path, help="the exported file (its manifest entry inside)")
    parser.add_argument("--scores", type=Path, required=True, help="the JSON that tools.score_weights wrote")
    parser.add_argument("--label", required=True, help="the candidate's column in --scores")
    parser.add_argument("--notes", required=True, help="what the file is and where it stands")
    parser.add_argument("--weights-dir", type=Path, default=Path("weights"))
    parser.add_argument("--preset", default="symunet-campaign", help="whose held-out crops decide")
    parser.add_argument("--min-gain", type=float, default=0.15)
    parser.add_argument("--any-gain", action="store_true", help="ship whatever the held-out gain")
    parser.add_argument("--evaluate", help="the command that scored it (default: the score_weights command "
                        "for --label and the candidate)")
    args = parser.parse_args(argv)
    try:
        entry = ship(args.candidate, args.weights_dir, scores=json.loads(args.scores.read_text()), label=args.label,
                     notes=args.notes, evaluate=args.evaluate, min_gain=None if args.any_gain else args.min_gain,
                     preset=args.preset)
    except ValueError as err:
        raise SystemExit(f"ship_weights: {err}") from None
    print(f"{args.weights_dir / args.candidate.name}: shipped at step {entry['steps']}, sha256 {entry['sha256'][:16]}; "
          "now run python -m tools.models_table and python -m tools.gen_model_facts")


if __name__ == "__main__":
    main()
