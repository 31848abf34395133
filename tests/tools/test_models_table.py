"""README's models table is tools.models_table.render(weights/manifest.json), so scores live in the manifest only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # tools/ is a top-level folder of the checkout, not part of the installed package
    sys.path.insert(0, str(ROOT))

from tools import models_table  # noqa: E402


def _manifest() -> dict:
    return json.loads((ROOT / "weights" / "manifest.json").read_text(encoding="utf-8"))


def test_the_readme_table_is_the_manifest_rendered():
    block = models_table.readme_block((ROOT / "README.md").read_text(encoding="utf-8"))
    assert block == models_table.render(_manifest()), "README's models table drifted: run python -m tools.models_table"


def test_every_shipped_score_cbm3d_and_paper_number_is_in_the_table():
    manifest = _manifest()
    table = models_table.render(manifest)
    for name, entry in manifest["files"].items():
        own = entry["scores"]["promptir_3task"][entry["model"]]
        for psnr, ssim in own.values():
            assert f"{psnr:.2f}/{ssim:.3f}" in table, f"{name}: {psnr}/{ssim} missing"
    assert "30.29/0.866" in table  # CBM3D at sigma 25, from symunet-aio3's entry
    papers = manifest["published"]["psnr"]
    assert set(papers) == {"PromptIR", "DaAIR"} and manifest["published"]["source"]
    for sets in papers.values():
        for value in sets.values():
            assert f"{value:.2f}" in table


def test_a_changed_score_changes_the_table_and_the_check_fails(tmp_path):
    manifest = _manifest()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{models_table.START}\nstale\n{models_table.END}\nrest\n", encoding="utf-8")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    args = ["--readme", str(readme), "--manifest", str(tmp_path / "manifest.json")]
    assert models_table.main([*args, "--check"]) == 1
    assert models_table.main(args) == 0
    assert models_table.main([*args, "--check"]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith(f"{models_table.END}\nrest\n")
    manifest["files"]["daair-aio3.safetensors"]["scores"]["promptir_3task"]["daair"]["avg"] = [30.5, 0.9]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert models_table.main([*args, "--check"]) == 1
    assert "30.50/0.900" in models_table.render(manifest)
