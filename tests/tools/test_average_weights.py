"""tools/average_weights.py: (1 - t)·A + t·B, strict about keys, loadable as the model's weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from airtool.errors import WeightsError
from airtool.models import get_spec
from airtool.models.weights import load_model, save_weights
from tools.average_weights import average


def _tiny(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    module = get_spec("symunet").create("tiny")
    save_weights(module, path, model="symunet", variant="tiny", config={}, dtype="fp32")
    return path


def test_interpolation_ends_and_middle(tmp_path: Path):
    a, b = _tiny(tmp_path / "a.safetensors", 0), _tiny(tmp_path / "b.safetensors", 1)
    for t in (0.0, 0.5, 1.0):
        out = tmp_path / f"t{t}.safetensors"
        average(a, b, t, out)
        mixed, first, second = load_file(str(out)), load_file(str(a)), load_file(str(b))
        for key, value in mixed.items():
            torch.testing.assert_close(value, (1 - t) * first[key] + t * second[key])
    model, _ = load_model("symunet", tmp_path / "t0.5.safetensors")  # the loader's strict check passes
    assert sum(p.numel() for p in model.parameters()) > 0


def test_files_with_other_keys_are_refused(tmp_path: Path):
    a = _tiny(tmp_path / "a.safetensors", 0)
    state = load_file(str(a))
    save_file({**state, "stray.weight": torch.zeros(1)}, str(tmp_path / "b.safetensors"))
    with pytest.raises(WeightsError, match="stray.weight"):
        average(a, tmp_path / "b.safetensors", 0.5, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_the_mean_of_several_files_is_their_average_in_the_chosen_dtype(tmp_path: Path):
    from tools.average_weights import main, mean

    files = [_tiny(tmp_path / f"s{i}.safetensors", i) for i in range(3)]
    mean(files, tmp_path / "mean.safetensors", dtype="bf16")
    mixed, states = load_file(str(tmp_path / "mean.safetensors")), [load_file(str(f)) for f in files]
    for key, value in mixed.items():
        if value.is_floating_point():
            assert value.dtype == torch.bfloat16
            expected = sum(s[key].double() for s in states) / 3
            torch.testing.assert_close(value.double(), expected, rtol=1e-2, atol=1e-2)
    model, _ = load_model("symunet", tmp_path / "mean.safetensors")
    assert sum(p.numel() for p in model.parameters()) > 0
    with pytest.raises(SystemExit):
        main(["--mean", str(files[0]), "--out", str(tmp_path / "one.safetensors")])  # one file is no mean


def test_the_mean_refuses_files_with_other_keys(tmp_path: Path):
    from tools.average_weights import mean

    a = _tiny(tmp_path / "a.safetensors", 0)
    save_file({**load_file(str(a)), "stray.weight": torch.zeros(1)}, str(tmp_path / "b.safetensors"))
    with pytest.raises(WeightsError, match="stray.weight"):
        mean([tmp_path / "b.safetensors", a], tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()
