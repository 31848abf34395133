"""se-symunet through the CLI: the CLIP path from --clip, AIRTOOL_CLIP or the YAML config, and the
one-line failure without it; transformers stays unimported for everything else."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from airtool.cli import app
from tests.conftest import gradient_image

runner = CliRunner()


@pytest.fixture
def pictures(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name, (h, w) in {"a.png": (40, 56), "b.png": (33, 70)}.items():
        Image.fromarray((gradient_image(h, w) * 255).astype(np.uint8)).save(src / name)
    return src


def test_restore_without_a_clip_fails_in_one_line_before_any_file(pictures, tmp_path, tiny_se_weights, monkeypatch):
    monkeypatch.delenv("AIRTOOL_CLIP", raising=False)
    out = tmp_path / "out"
    result = runner.invoke(app, ["restore", str(pictures), str(out), "-m", "se-symunet", "-w", str(tiny_se_weights)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--clip PATH" in lines[0] and "AIRTOOL_CLIP" in lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_restore_with_clip_from_option_environment_and_config(pictures, tmp_path, tiny_se_weights, tiny_clip_dir,
                                                                monkeypatch):
    monkeypatch.delenv("AIRTOOL_CLIP", raising=False)
    base = ["restore", str(pictures), "-m", "se-symunet", "-w", str(tiny_se_weights), "--tile", "32", "--tile-overlap", "8"]
    result = runner.invoke(app, [*base[:2], str(tmp_path / "o1"), *base[2:], "--clip", str(tiny_clip_dir)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "o1").iterdir() if not p.name.startswith(".")} == {"a.png", "b.png"}
    assert Image.open(tmp_path / "o1" / "b.png").size == (70, 33)
    monkeypatch.setenv("AIRTOOL_CLIP", str(tiny_clip_dir))
    assert runner.invoke(app, [*base[:2], str(tmp_path / "o2"), *base[2:]]).exit_code == 0
    monkeypatch.delenv("AIRTOOL_CLIP")
    config = tmp_path / "airtool.yaml"
    config.write_text(f"restore:\n  clip: {tiny_clip_dir}\n")
    assert runner.invoke(app, ["--config", str(config), *base[:2], str(tmp_path / "o3"), *base[2:]]).exit_code == 0
    same = [np.array_equal(np.asarray(Image.open(tmp_path / "o1" / n)), np.asarray(Image.open(tmp_path / o / n)))
            for o in ("o2", "o3") for n in ("a.png", "b.png")]
    assert all(same)  # deterministic: the positional field is seeded


def test_evaluate_and_bench_take_clip(tmp_path, tiny_se_weights, tiny_clip_dir, monkeypatch):
    monkeypatch.delenv("AIRTOOL_CLIP", raising=False)
    data = tmp_path / "pairs"
    for sub in ("input", "target"):
        (data / sub).mkdir(parents=True)
        Image.fromarray((gradient_image(32, 48, seed=sub == "input") * 255).astype(np.uint8)).save(data / sub / "1.png")
    args = ["evaluate", "-m", "se-symunet", "-w", str(tiny_se_weights), "--data", str(data), "--json", "--device", "cpu"]
    result = runner.invoke(app, [*args, "--clip", str(tiny_clip_dir)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["count"] == 1
    missing = runner.invoke(app, args)
    assert missing.exit_code == 2 and "--clip PATH" in missing.stderr
    bench = runner.invoke(app, ["bench", "-m", "se-symunet", "--variant", "tiny", "-s", "32", "--repeats", "1",
                                "--warmup", "0", "--device", "cpu", "--json", "--clip", str(tiny_clip_dir)])
    assert bench.exit_code == 0, bench.output
    assert json.loads(bench.stdout.splitlines()[0])["model"] == "se-symunet"


@pytest.mark.slow
def test_help_models_and_other_models_do_not_import_transformers(tiny_weights):
    code = (
        "import sys\n"
        "import airtool\n"
        "from airtool.cli import app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner()\n"
        "assert r.invoke(app, ['--help']).exit_code == 0\n"
        "assert r.invoke(app, ['restore', '--help']).exit_code == 0\n"
        "assert 'transformers' not in sys.modules and 'torch' not in sys.modules\n"
        "assert r.invoke(app, ['models', '--json']).exit_code == 0\n"
        "from airtool.models.weights import load_model\n"
        f"model, _ = load_model('symunet', {str(tiny_weights)!r})\n"
        "import torch; model(torch.rand(1, 3, 16, 16))\n"
        "print('transformers' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_models_lists_se_symunet_with_its_trainable_count():
    rows = {r["name"]: r for r in json.loads(runner.invoke(app, ["models", "--json"]).stdout)}
    assert rows["se-symunet"]["params"] == 67_432_643 and rows["se-symunet"]["weights"] == []
    assert rows["se-symunet"]["needs_clip"] and not rows["symunet"]["needs_clip"]
