"""The real CLI, end to end on tiny images with the tiny model."""

from __future__ import annotations

import io
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


def _write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((arr * 255).astype(np.uint8).squeeze()).save(path)


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "in"
    _write(src / "a.png", gradient_image(24, 40))
    _write(src / "sub" / "b.png", gradient_image(33, 21, seed=1))
    _write(src / "grey.png", gradient_image(20, 20, channels=1))
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    return src


def test_folder_with_a_corrupt_file(folder, tmp_path, tiny_weights):
    out = tmp_path / "out"
    result = runner.invoke(app, ["restore", str(folder), str(out), "-r", "-w", str(tiny_weights), "--device", "cpu"])
    assert result.exit_code == 3, result.output
    failed = [line for line in result.stderr.splitlines() if "corrupt.png" in line]
    assert len(failed) == 1 and "failed" in failed[0]
    assert "Traceback" not in result.output
    for rel in ("a.png", "sub/b.png", "grey.png"):
        assert (out / rel).is_file()
    assert Image.open(out / "grey.png").mode == "L"
    assert not (out / "corrupt.png").exists()


def test_json_records_and_resume(folder, tmp_path, tiny_weights):
    out = tmp_path / "out"
    (folder / "corrupt.png").unlink()
    (out).mkdir()
    _write(out / "a.png", gradient_image(24, 40))  # pretend an earlier run finished a.png
    before = (out / "a.png").read_bytes()
    result = runner.invoke(app, ["restore", str(folder), str(out), "-r", "-w", str(tiny_weights), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[-1]["summary"] and records[-1]["done"] == 2 and records[-1]["skipped"] == 1
    statuses = {r["input"].split("/")[-1]: r["status"] for r in records[:-1]}
    assert statuses == {"a.png": "skipped", "b.png": "done", "grey.png": "done"}
    assert (out / "a.png").read_bytes() == before
    again = runner.invoke(app, ["restore", str(folder), str(out), "-r", "-w", str(tiny_weights), "--overwrite", "--json"])
    assert json.loads(again.stdout.splitlines()[-1])["done"] == 3


def test_rerun_with_another_model_or_options_is_refused_naming_overwrite(folder, tmp_path, tiny_weights):
    (folder / "corrupt.png").unlink()
    out = tmp_path / "out"
    base = ["restore", str(folder), str(out), "-r", "--device", "cpu"]
    assert runner.invoke(app, [*base, "-m", "identity"]).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*.png")}
    for extra in ([], ["--dry-run"]):
        other = runner.invoke(app, [*base, "-w", str(tiny_weights), *extra])
        assert other.exit_code == 2, other.output
        line = other.stderr.strip()
        assert "\n" not in line and "--overwrite" in line
        assert "made with model identity, weights none; this run would use model symunet, weights symunet-tiny" in line
    tile = runner.invoke(app, [*base, "-m", "identity", "--tile", "64"])
    assert tile.exit_code == 2 and "made with tile auto; this run would use tile 64" in tile.stderr
    assert {p: p.read_bytes() for p in out.rglob("*.png")} == before  # nothing was touched
    same = runner.invoke(app, [*base, "-m", "identity", "--json"])  # the same recipe resumes
    assert same.exit_code == 0 and json.loads(same.stdout.splitlines()[-1])["skipped"] == 3
    redo = runner.invoke(app, [*base, "-w", str(tiny_weights), "--overwrite", "--json"])
    assert redo.exit_code == 0 and json.loads(redo.stdout.splitlines()[-1])["done"] == 3
    resumed = runner.invoke(app, [*base, "-w", str(tiny_weights), "--json"])
    assert resumed.exit_code == 0 and json.loads(resumed.stdout.splitlines()[-1])["skipped"] == 3
    assert runner.invoke(app, [*base, "-m", "identity"]).exit_code == 2  # now symunet's outputs are protected


def test_dry_run_writes_nothing(folder, tmp_path, tiny_weights):
    out = tmp_path / "out"
    result = runner.invoke(app, ["restore", str(folder), str(out), "--dry-run", "-w", str(tiny_weights)])
    assert result.exit_code == 0 and not out.exists()


@pytest.mark.slow
def test_stdin_to_stdout(tmp_path, tiny_weights):
    buf = io.BytesIO()
    Image.fromarray((gradient_image(17, 29) * 255).astype(np.uint8)).save(buf, "PNG")
    proc = subprocess.run(
        [sys.executable, "-m", "airtool", "restore", "-", "-", "--format", "png", "-w", str(tiny_weights)],
        input=buf.getvalue(), capture_output=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert Image.open(io.BytesIO(proc.stdout)).size == (29, 17)


@pytest.mark.parametrize(("fmt_in", "option", "fmt_out"), [("PNG", [], "PNG"), ("JPEG", [], "JPEG"),
                                                        ("PNG", ["--format", "webp"], "WEBP")])
def test_stdin_format_is_sniffed_from_the_bytes(tmp_path, fmt_in, option, fmt_out):
    buf = io.BytesIO()
    Image.fromarray((gradient_image(17, 29) * 255).astype(np.uint8)).save(buf, fmt_in)
    result = runner.invoke(app, ["restore", "-", "-", "-m", "identity", *option], input=buf.getvalue())
    assert result.exit_code == 0, result.output
    out = Image.open(io.BytesIO(result.stdout_bytes))
    assert out.format == fmt_out and out.size == (29, 17)


def test_usage_errors_exit_2(tmp_path, tiny_weights):
    src = tmp_path / "a.png"
    _write(src, gradient_image(8, 8))
    assert runner.invoke(app, ["restore", str(src)]).exit_code == 2
    result = runner.invoke(app, ["restore", str(tmp_path), str(tmp_path), "-w", str(tiny_weights)])
    assert result.exit_code == 2 and "overwrite the input" in result.stderr
    assert runner.invoke(app, ["restore", str(src), str(tmp_path / "o"), "--tile", "big"]).exit_code == 2


def test_missing_weights_is_fatal_exit_1(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRTOOL_WEIGHTS", str(tmp_path / "none"))
    src = tmp_path / "a.png"
    _write(src, gradient_image(8, 8))
    result = runner.invoke(app, ["restore", str(src), str(tmp_path / "out")])
    assert result.exit_code == 1 and "no trained weights" in result.stderr


def test_env_and_config_layering(tmp_path, tiny_weights, monkeypatch):
    src = tmp_path / "a.png"
    _write(src, gradient_image(8, 8))
    cfg = tmp_path / "airtool.yaml"
    cfg.write_text(f"restore:\n  weights: {tiny_weights}\n  suffix: _cfg\n")
    result = runner.invoke(app, ["--config", str(cfg), "restore", str(src), str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "a_cfg.png").is_file()
    monkeypatch.setenv("AIRTOOL_RESTORE_SUFFIX", "_env")
    runner.invoke(app, ["--config", str(cfg), "restore", str(src), str(tmp_path / "o")])
    assert (tmp_path / "o" / "a_env.png").is_file()
    runner.invoke(app, ["--config", str(cfg), "restore", str(src), str(tmp_path / "o"), "--suffix", "_cli"])
    assert (tmp_path / "o" / "a_cli.png").is_file()


def test_models_json_lists_every_model():
    result = runner.invoke(app, ["models", "--json"])
    rows = json.loads(result.stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["symunet"]["params"] == 22_288_827
    for row in rows:
        assert {"name", "params", "paper", "weights"} <= set(row)


def test_version_and_help_do_not_import_torch():
    code = "import sys; sys.argv=['airtool','--help']\nfrom airtool.cli import main\ntry:\n main()\nexcept SystemExit: pass\nprint('torch' in sys.modules, 'numpy' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().endswith("False False")
    assert runner.invoke(app, ["--version"]).stdout.startswith("airtool ")
