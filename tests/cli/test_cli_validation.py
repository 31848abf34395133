"""Everything that would fail is found before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from airtool import api
from airtool.api import RestoreOptions
from airtool.cli import app

runner = CliRunner()
SHIPPED = Path(__file__).resolve().parents[2] / "weights" / "symunet-s-aio3.safetensors"


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "in" / "a.png"
    path.parent.mkdir()
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(path)
    return path


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRTOOL_WEIGHTS", str(tmp_path / "no-weights"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "symunet-s", "-w", "missing.safetensors"], "weights file not found"),
        (["-m", "symunet"], "no trained weights for model 'symunet'"),
        (["-m", "identity", "--device", "cuda:7"], "device 'cuda:7' requested"),
        (["-m", "symunet-s", "-w", str(SHIPPED), "--precision", "fp16", "--device", "cpu"], "not validated"),
    ],
)
def test_dry_run_fails_where_the_real_run_would(photo, tmp_path, no_weights, args, message):
    for extra in (["--dry-run"], []):
        result = runner.invoke(app, ["restore", str(photo), str(tmp_path / "out"), *args, *extra])
        assert result.exit_code == 1, (extra, result.output)
        assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_dry_run_that_would_succeed_lists_the_work(photo, tmp_path):
    result = runner.invoke(app, ["restore", str(photo.parent), str(tmp_path / "out"), "-m", "identity", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "1 to do" in result.stderr and not (tmp_path / "out").exists()


def test_unknown_config_keys_are_errors_naming_the_key(photo, tmp_path):
    for text, key in [("restore:\n  tiel: 256\n", "restore.tiel: unknown option"),
                      ("restor:\n  tile: 256\n", "restor: unknown command"),
                      ("train:\n  export:\n    dtyp: fp32\n", "train.export.dtyp: unknown option")]:
        cfg = tmp_path / "airtool.yaml"
        cfg.write_text(text)
        result = runner.invoke(app, ["--config", str(cfg), "restore", str(photo), str(tmp_path / "out"), "-m", "identity"])
        assert result.exit_code == 2, result.output
        assert key in result.stderr and str(cfg) in result.stderr and result.stderr.count("\n") == 1
        assert not (tmp_path / "out").exists()


def test_config_keys_are_the_option_names(photo, tmp_path):
    cfg = tmp_path / "airtool.yaml"
    cfg.write_text("restore:\n  model: identity\n  format: jpg\n  tile-overlap: 8\n  json: true\n")
    result = runner.invoke(app, ["--config", str(cfg), "restore", str(photo), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a.jpg").is_file() and result.stdout.startswith("{")


@pytest.mark.parametrize(
    "args",
    [
        ["restore", "IN", "OUT", "--precision", "fp8"],
        ["restore", "IN", "OUT", "--threads", "-1"],
        ["restore", "IN", "OUT", "--threads", "0"],
        ["bench", "-m", "symunet", "--precision", "fp8"],
        ["bench", "-m", "symunet", "--threads", "-1"],
        ["evaluate", "-m", "symunet", "--data", "IN", "--precision", "fp8"],
    ],
)
def test_bad_precision_and_threads_are_usage_errors_before_the_model_loads(photo, tmp_path, no_weights, args):
    args = [str(photo.parent) if a == "IN" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    result = runner.invoke(app, args)  # symunet has no weights here: loading it would be exit 1
    assert result.exit_code == 2, result.output
    assert ("--precision" in result.stderr or "--threads" in result.stderr) and "weights" not in result.stderr


@pytest.mark.parametrize("output", ["out.png", "out", "-", "out.png --dry-run"])
def test_a_missing_lone_input_is_a_failed_input_whatever_the_output(tmp_path, output, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["restore", "missing.png", *output.split(), "-m", "identity"])
    assert result.exit_code == 3, result.output
    failures = [line for line in result.stderr.splitlines() if "missing.png" in line]
    assert failures == ["failed missing.png: no such file or folder"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_rgba_bound_for_jpeg_is_refused_before_its_inference(tmp_path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((8, 8, 4), 200, np.uint8), "RGBA").save(src / "clear.png")
    Image.fromarray(np.full((8, 8, 3), 50, np.uint8)).save(src / "plain.png")
    calls = []

    class CountingRestorer:
        def restore(self, pixels, on_tile=None, resume=None):
            calls.append(pixels.shape)
            return pixels, {}

    def counting_restorer(options):
        return CountingRestorer()

    monkeypatch.setattr("airtool.engine.inference.restore_run.build_restorer", counting_restorer)
    report = api.restore([str(src)], str(tmp_path / "out"), RestoreOptions(model="identity", format="jpg"))
    assert report.exit_code == 3
    assert [r.input.split("/")[-1] for r in report.failed] == ["clear.png"]
    assert "JPEG cannot store the alpha channel" in report.failed[0].reason
    assert calls == [(8, 8, 3)]  # only plain.png reached the inference
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".airtool-provenance.jsonl", "plain.jpg"]
