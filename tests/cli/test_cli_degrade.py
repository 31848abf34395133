"""``airtool degrade`` on a folder: pairs layout, sidecars, chaining order, reproducibility."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from airtool.cli import app
from tests.conftest import gradient_image

runner = CliRunner()


def _folder(tmp_path):
    src = tmp_path / "clean"
    (src / "sub").mkdir(parents=True)
    Image.fromarray((gradient_image(32, 48) * 255).astype(np.uint8)).save(src / "a.png")
    Image.fromarray((gradient_image(40, 24, seed=2) * 255).astype(np.uint8)).save(src / "sub" / "b.png")
    (src / "broken.png").write_bytes(b"not an image")
    return src


def test_noise_folder_is_reproducible_and_order_independent(tmp_path):
    src = _folder(tmp_path)
    first = runner.invoke(app, ["degrade", str(src), str(tmp_path / "o1"), "-r", "--noise", "25", "--seed", "0"])
    assert first.exit_code == 3 and "broken.png" in first.stderr
    second = runner.invoke(app, ["degrade", str(src / "sub"), str(tmp_path / "o2"), "--noise", "25", "--seed", "0"])
    assert second.exit_code == 0
    a1 = (tmp_path / "o1" / "a.png").read_bytes()
    again = runner.invoke(app, ["degrade", str(src), str(tmp_path / "o3"), "-r", "--noise", "25", "--seed", "0"])
    assert again.exit_code == 3 and (tmp_path / "o3" / "a.png").read_bytes() == a1
    other_seed = runner.invoke(app, ["degrade", str(src), str(tmp_path / "o4"), "--noise", "25", "--seed", "1"])
    assert other_seed.exit_code == 3 and (tmp_path / "o4" / "a.png").read_bytes() != a1
    sidecar = json.loads((tmp_path / "o1" / "a.png.json").read_text())
    assert sidecar["seed"] == 0 and sidecar["ops"][0]["params"]["sigma"] == 25.0 and sidecar["airtool_version"]


def test_pairs_layout_and_chain_order(tmp_path):
    src = _folder(tmp_path)
    (src / "broken.png").unlink()
    out = tmp_path / "pairs"
    result = runner.invoke(app, ["degrade", str(src), str(out), "-r", "--pairs", "--haze", "light", "--noise", "15"])
    assert result.exit_code == 0, result.output
    for rel in ("a.png", "sub/b.png"):
        assert (out / "input" / rel).is_file() and (out / "target" / rel).is_file()
    clean = np.asarray(Image.open(src / "a.png"))
    assert np.array_equal(np.asarray(Image.open(out / "target" / "a.png")), clean)
    assert not np.array_equal(np.asarray(Image.open(out / "input" / "a.png")), clean)
    ops = [o["op"] for o in json.loads((out / "input" / "a.png.json").read_text())["ops"]]
    assert ops == ["haze", "noise"]


def test_bad_spec_is_a_usage_error(tmp_path):
    src = _folder(tmp_path)
    result = runner.invoke(app, ["degrade", str(src), str(tmp_path / "o"), "--rain", "bogus=1"])
    assert result.exit_code == 2 and "bogus" in result.stderr


def test_every_registered_op_has_its_option_in_registry_order():
    import typer.main

    from airtool.degrade.registry import NAMES

    command = typer.main.get_command(app).commands["degrade"]  # type: ignore[attr-defined]
    ops = [p for p in command.params if p.name in NAMES]
    assert [p.name for p in ops] == list(NAMES)  # an op added to the registry needs its --option here
    assert all(p.opts == [f"--{p.name}"] for p in ops)
