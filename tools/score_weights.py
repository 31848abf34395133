"""Score candidate weights files on the 3-task benchmark (promptir protocol, RGB, fp32), the
table that decides whether a trained file ships (it must average at least 0.2 dB above the shipped one).

Usage (repo root, venv active):

    python -m tools.score_weights --model daair \\
        shipped=weights/daair-aio3.safetensors cand=runs/cand/daair-aio3.safetensors \\
        --jobs 2 --out runs/scores.json

Each (file, set) is one ``airtool evaluate ... --json`` process with one thread, ``--jobs`` at a
time: the five sets of one file take about 10 minutes on two cores (AMD EPYC, AVX2). The JSON
written is the ``promptir_3task`` table that ``mean_manifest --scores`` records, plus ``avg``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# (column, folder under the data root, --task): the 3-task benchmark of PromptIR, AnyIR and DaAIR.
SETS: tuple[tuple[str, str, str | None], ...] = (
    ("SOTS_outdoor_mini", "SOTS_outdoor_mini", None),
    ("Rain100L_50", "Rain100L", None),
    ("CBSD68_s15", "CBSD68", "noise:15"),
    ("CBSD68_s25", "CBSD68", "noise:25"),
    ("CBSD68_s50", "CBSD68", "noise:50"),
)


def evaluate_command(model: str, weights: str, folder: Path, task: str | None, limit: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "airtool", "evaluate", "-m", model, "--data", str(folder),
           "--precision", "fp32", "--json"]
    if weights:
        cmd += ["-w", weights]
    if task:
        cmd += ["--task", task]
    if limit:
        cmd += ["--limit", str(limit)]
    return cmd


def summary_of(stdout: str) -> tuple[float, float]:
    """PSNR and SSIM of the last line ``airtool evaluate --json`` prints (the means)."""
    last = json.loads(stdout.strip().splitlines()[-1])
    return round(float(last["psnr"]), 2), round(float(last["ssim"]), 3)


def with_average(table: dict[str, list[float]]) -> dict[str, list[float]]:
    """The table with ``avg``: the mean PSNR and SSIM over its sets, as the papers average."""
    psnr = [v[0] for v in table.values()]
    ssim = [v[1] for v in table.values()]
    return {**table, "avg": [round(sum(psnr) / len(psnr), 2), round(sum(ssim) / len(ssim), 3)]}


def score(model: str, files: dict[str, str], data_root: Path, jobs: int, limit: int | None = None) -> dict:
    """``{"promptir_3task": {label: {set: [psnr, ssim], ..., "avg": [...]}}}``; a failed
    evaluation raises, naming the file, the set and the evaluator's last line."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    work = [(label, column, evaluate_command(model, path, data_root / folder, task, limit))
            for label, path in files.items() for column, folder, task in SETS]

    def run(item: tuple[str, str, list[str]]) -> tuple[str, str, tuple[float, float]]:
        label, column, cmd = item
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["failed"])[-1]
            raise RuntimeError(f"{label} on {column}: {last}")
        print(f"  {label} {column}: {summary_of(done.stdout)[0]:.2f} dB", file=sys.stderr, flush=True)
        return label, column, summary_of(done.stdout)

    tables: dict[str, dict[str, list[float]]] = {label: {} for label in files}
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        for label, column, (psnr, ssim) in pool.map(run, work):
            tables[label][column] = [psnr, ssim]
    finally:
        pool.shutdown(cancel_futures=True)  # a failure does not wait for the queued evaluations
    return {"promptir_3task": {label: with_average(table) for label, table in tables.items()}}


def markdown(scores: dict) -> str:
    columns = [column for column, _, _ in SETS] + ["avg"]
    lines = ["| weights | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, table in scores["promptir_3task"].items():
        lines.append(f"| {label} | " + " | ".join(f"{table[c][0]:.2f}" for c in columns) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="LABEL=FILE", help="a weights file and its column label")
    parser.add_argument("--model", required=True)
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("AIRTOOL_DATA", "../shared/data")))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit", type=int, help="only the first N images of each set (a quick look, not a score)")
    parser.add_argument("--out", type=Path, help="write the scores here as JSON")
    args = parser.parse_args(argv)
    files = {}
    for item in args.files:
        label, sep, path = item.partition("=")
        if not sep or not label:
            raise SystemExit(f"score_weights: {item!r} is not LABEL=FILE")
        files[label] = path
    try:
        scores = score(args.model, files, args.data_root, args.jobs, args.limit)
    except RuntimeError as err:
        raise SystemExit(f"score_weights: {err}") from None
    print(markdown(scores))
    if args.out:
        args.out.write_text(json.dumps(scores, indent=1) + "\n")


if __name__ == "__main__":
    main()
