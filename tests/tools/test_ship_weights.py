"""tools/ship_weights.py: a candidate ships only past the held-out bar, with a complete entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airtool.config import to_yaml
from airtool.engine.training import train as T
from airtool.models.weights import read_manifest, sha256_of
from tests.engine.training.test_train import make_train_data, tiny_config
from tools.ship_weights import main, ship, ship_entry

PUBLIC = {"CBSD68_s25": [30.5, 0.86], "avg": [30.5, 0.86]}


def _previous() -> dict:
    return {
        "sha256": "o" * 64, "steps": 539,
        "scores": {
            "cbm3d_side_by_side": {"CBSD68_s25": [30.29, 0.866]},
            "heldout_val": {"step": 539, "val_psnr": 26.2},
            "promptir_3task": {"identity": {"CBSD68_s25": [20.54, 0.417]}, "symunet": {"CBSD68_s25": [29.74, 0.85]}},
        },
    }


def _candidate() -> dict:
    return {"model": "symunet", "steps": 3565, "lineage": [{"steps": 539}, {"steps": 3565}],
            "command": {"train": ["airtool train campaign"], "export": "airtool train export"},
            "scores": {"heldout_val": {"step": 3400, "val_psnr": 27.1}}}


def test_the_entry_keeps_the_benchmark_rows_and_records_what_it_replaces():
    entry = ship_entry(_candidate(), _previous(), sha256="n" * 64, heldout={"val_psnr": 27.24},
                       public=PUBLIC, notes="grown and trained", evaluate="score it")
    scores = entry["scores"]
    assert scores["cbm3d_side_by_side"] == {"CBSD68_s25": [30.29, 0.866]}
    assert scores["promptir_3task"] == {"identity": {"CBSD68_s25": [20.54, 0.417]}, "symunet": PUBLIC}
    assert scores["heldout_val"] == {"step": 3565, "val_psnr": 27.24}  # measured on the file, not the last validation
    assert entry["replaces"] == {"sha256": "o" * 64, "steps": 539, "heldout_val": {"step": 539, "val_psnr": 26.2},
                                 "promptir_3task": {"CBSD68_s25": [29.74, 0.85]}}
    assert (entry["sha256"], entry["notes"], entry["lineage"]) == ("n" * 64, "grown and trained", _candidate()["lineage"])
    assert entry["command"] == {"train": ["airtool train campaign"], "export": "airtool train export", "evaluate": "score it"}


def test_a_first_ship_has_nothing_to_replace():
    entry = ship_entry(_candidate(), None, sha256="n" * 64, heldout={"val_psnr": 27.0}, public=PUBLIC,
                       notes="", evaluate="")
    assert "replaces" not in entry
    assert entry["scores"]["promptir_3task"] == {"symunet": PUBLIC}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, str]:
    """A tiny run exported at its last step (the candidate), and its preset."""
    root = tmp_path_factory.mktemp("ship")
    cfg = tiny_config(make_train_data(root / "data"), root / "runs", steps=4, ckpt_every=2)
    preset = root / "tiny.yaml"
    preset.write_text(to_yaml(cfg))
    result = T.train(cfg)
    (root / "cand").mkdir()
    T.export_run(result.run, root / "cand" / "tiny.safetensors", dtype="fp32")
    return root, str(preset)


def _fresh_weights_dir(root: Path, name: str) -> Path:
    """weights/ already holding the candidate's own bytes: the file to beat, by 0 dB."""
    folder = root / name
    folder.mkdir()
    (folder / "tiny.safetensors").write_bytes((root / "cand" / "tiny.safetensors").read_bytes())
    return folder


def test_a_candidate_below_the_bar_is_not_shipped(exported):
    root, preset = exported
    weights = _fresh_weights_dir(root, "weights-below")
    before = (weights / "tiny.safetensors").read_bytes()
    with pytest.raises(ValueError, match="held-out gain"):
        ship(root / "cand" / "tiny.safetensors", weights, scores={"promptir_3task": {"c": PUBLIC}}, label="c",
             notes="", evaluate="", min_gain=0.15, preset=preset)  # the same weights gain 0 dB
    assert (weights / "tiny.safetensors").read_bytes() == before
    assert not (weights / "manifest.json").exists()


def test_shipping_copies_the_file_and_writes_its_entry(exported, tmp_path: Path, capsys):
    root, preset = exported
    weights = tmp_path / "weights"
    weights.mkdir()
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps({"promptir_3task": {"cand": PUBLIC}}))
    main([str(root / "cand" / "tiny.safetensors"), "--scores", str(scores), "--label", "cand", "--notes", "n",
          "--weights-dir", str(weights), "--preset", preset])
    shipped = weights / "tiny.safetensors"
    entry = read_manifest(weights)["files"]["tiny.safetensors"]
    assert entry["sha256"] == sha256_of(shipped) == sha256_of(root / "cand" / "tiny.safetensors")
    assert entry["scores"]["promptir_3task"] == {entry["model"]: PUBLIC}
    assert entry["scores"]["heldout_val"]["step"] == 4
    assert 0 < entry["scores"]["heldout_val"]["val_psnr"] < 100
    assert entry["command"]["evaluate"].startswith(f"python -m tools.score_weights --model {entry['model']} cand=")
    assert "shipped at step 4" in capsys.readouterr().out


def test_a_missing_scores_column_is_one_line(exported, tmp_path: Path):
    root, preset = exported
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps({"promptir_3task": {"other": PUBLIC}}))
    with pytest.raises(SystemExit, match="no promptir_3task column 'cand'"):
        main([str(root / "cand" / "tiny.safetensors"), "--scores", str(scores), "--label", "cand", "--notes", "n",
              "--weights-dir", str(tmp_path), "--preset", preset])
    assert not list(tmp_path.glob("*.safetensors"))
