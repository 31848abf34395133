"""tools/campaign_curve.py: the campaign's curve continues across runs and lost run folders."""

from __future__ import annotations

import json
from pathlib import Path

from tools import campaign_curve as cc


def write_run(run: Path, vals: list[dict]) -> Path:
    run.mkdir(parents=True)
    lines = [{"event": "start", "step": vals[0]["step"]}, *({"event": "val", **v} for v in vals)]
    (run / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    return run


def val(step: int, psnr: float, cpu_s: float | None = None) -> dict:
    out = {"step": step, "val_psnr": psnr, "val_psnr_noise": psnr + 2, "val_psnr_rain": psnr, "val_psnr_haze": psnr - 2}
    return out if cpu_s is None else {**out, "cpu_time_s": cpu_s}


def test_the_curve_starts_at_the_shipped_file_and_adds_core_hours(tmp_path: Path):
    weights = tmp_path / "weights" / "w.safetensors"
    weights.parent.mkdir()
    entry = {"steps": 100, "wall_time_s": 7200.0, "scores": {"heldout_val": val(100, 20.0)}}
    (weights.parent / "manifest.json").write_text(json.dumps({"files": {"w.safetensors": entry}}))
    run = write_run(tmp_path / "campaign", [val(100, 20.1), val(200, 21.0, 1800.0), val(300, 21.5, 3600.0)])
    out = tmp_path / "curve.csv"
    cc.main([str(run), "--csv", str(out), "--png", str(tmp_path / "curve.png"), "--weights", str(weights)])
    rows = cc.read_rows(out)
    assert sorted(rows) == [100, 200, 300]
    assert rows[100]["source"].endswith("(manifest)") and rows[100]["val_psnr"] == "20.0000"
    assert [float(rows[s]["core_hours"]) for s in (100, 200, 300)] == [2.0, 2.5, 3.0]
    assert (tmp_path / "curve.png").stat().st_size > 0

    # runs/ lost: a new run continues from an exported step-300 file; its hours go on from there
    later = write_run(tmp_path / "later" / "campaign", [val(300, 21.4), val(400, 22.0, 900.0)])  # same name
    cc.main([str(later), "--csv", str(out), "--png", str(tmp_path / "curve.png"), "--weights", str(weights)])
    rows = cc.read_rows(out)
    assert sorted(rows) == [100, 200, 300, 400]
    assert rows[300]["val_psnr"] == "21.5000"  # the point already on the curve is kept
    assert float(rows[400]["core_hours"]) == 3.25
    cc.main([str(later), "--csv", str(out), "--png", str(tmp_path / "curve.png"), "--weights", str(weights)])
    assert cc.read_rows(out) == rows  # adding the same run again changes nothing


def test_a_grown_start_takes_the_hours_spent_to_get_there(tmp_path: Path):
    weights = tmp_path / "weights" / "w.safetensors"
    weights.parent.mkdir()
    entry = {"steps": 100, "wall_time_s": 3600.0, "scores": {"heldout_val": val(100, 20.0)}}
    (weights.parent / "manifest.json").write_text(json.dumps({"files": {"w.safetensors": entry}}))
    grown = write_run(tmp_path / "campaign", [val(150, 23.0), val(200, 23.5, 360.0)])
    out = tmp_path / "curve.csv"
    cc.main([str(grown), "--csv", str(out), "--png", str(tmp_path / "c.png"), "--weights", str(weights),
             "--start-hours", "2.5"])
    rows = cc.read_rows(out)
    assert sorted(rows) == [100, 150, 200]
    assert [float(rows[s]["core_hours"]) for s in (100, 150, 200)] == [1.0, 2.5, 2.6]


def test_points_after_a_change_of_held_out_crops_say_so(tmp_path: Path):
    run = tmp_path / "campaign"
    run.mkdir()
    events = [{"event": "start", "step": 100, "val_input_psnr": 19.5}, {"event": "val", **val(100, 20.0)},
              {"event": "val", **val(200, 21.0, 600.0)},
              {"event": "start", "step": 250, "val_input_psnr": 19.5},  # an exact resume: the same crops
              {"event": "val", **val(300, 21.2, 900.0)},
              {"event": "start", "step": 340, "val_input_psnr": 20.3},  # resumed on a changed data mix
              {"event": "val", **val(400, 20.9, 1200.0)}]
    (run / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    rows = {int(r["step"]): r for r in cc.run_rows(run, {}, 1.0)}
    assert [rows[s]["source"] for s in (100, 200, 300)] == ["campaign from step 100"] * 3
    assert rows[400]["source"] == "campaign from step 100; held-out crops changed at step 340"
