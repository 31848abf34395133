"""Weights load safely and strictly; hostile or damaged files are refused with one line."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from airtool.errors import WeightsError
from airtool.models import get_spec
from airtool.models.weights import load_model, read_state_dict, save_weights, sha256_of, update_manifest


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create the marker file when unpickled


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"params": _Payload(str(marker))}))
    with pytest.raises(WeightsError, match="evil.pth"):
        read_state_dict(evil)
    assert not marker.exists()
    zipped = tmp_path / "evil_zip.pth"
    torch.save({"params": _Payload(str(marker))}, zipped)
    marker.unlink(missing_ok=True)
    with pytest.raises(WeightsError):
        read_state_dict(zipped)
    assert not marker.exists()


def test_safetensors_roundtrip_and_strict_keys(tmp_path, tiny_weights):
    model, _ = load_model("symunet", tiny_weights)
    state = model.state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["intro.bias"]
    bad = tmp_path / "bad.safetensors"
    from safetensors.torch import save_file

    save_file(state, str(bad), metadata={"airtool_model": "symunet", "airtool_variant": "tiny"})
    with pytest.raises(WeightsError) as err:
        load_model("symunet", bad)
    message = str(err.value)
    assert "missing keys: intro.bias" in message and "unexpected keys: extra.weight" in message
    assert "\n" not in message


def test_wrong_shapes_named(tmp_path, tiny_weights):
    from safetensors.torch import save_file

    state, _ = read_state_dict(tiny_weights)
    path = tmp_path / "tiny_labelled_small.safetensors"
    save_file(state, str(path), metadata={"airtool_model": "symunet", "airtool_variant": "small"})
    with pytest.raises(WeightsError, match="wrong shapes"):
        load_model("symunet", path)


def test_sha256_mismatch_with_manifest_is_refused(tmp_path):
    model = get_spec("symunet").create("tiny")
    path = tmp_path / "symunet-x.safetensors"
    digest = save_weights(model, path, model="symunet", variant="tiny", config={})
    update_manifest(tmp_path, path.name, {"sha256": digest})
    load_model("symunet", path)  # matches: loads
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert sha256_of(path) != digest
    with pytest.raises(WeightsError, match="sha256 does not match"):
        load_model("symunet", path)
    assert json.loads((tmp_path / "manifest.json").read_text())["files"][path.name]["sha256"] == digest


def test_weights_for_another_model_are_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(get_spec("symunet").create("tiny"), path, model="anyir", variant="tiny", config={})
    with pytest.raises(WeightsError, match="trained for model 'anyir'"):
        load_model("symunet", path)


def test_no_weights_gives_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRTOOL_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match="airtool train"):
        load_model("symunet")


def test_loading_builds_the_model_from_its_weights_without_random_initialisation(tmp_path, monkeypatch):
    """Start-up: no time goes into random initialisation that the weights overwrite at once
    (22M parameters for symunet), and the loaded model is exactly the saved one."""
    torch.manual_seed(0)
    model = get_spec("symunet").create("tiny")
    path = tmp_path / "w.safetensors"
    save_weights(model, path, model="symunet", variant="tiny", config={}, dtype="bf16")
    inits = []
    real = torch.nn.init.kaiming_uniform_

    def spy(*args, **kwargs):
        inits.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.init, "kaiming_uniform_", spy)
    get_spec("symunet").create("tiny")
    assert inits  # building a model normally initialises its convolutions
    inits.clear()
    loaded, _ = load_model("symunet", path)
    assert inits == [] and torch.nn.init.kaiming_uniform_ is spy  # none when weights follow; put back after
    expected = {k: v.to(torch.bfloat16).float() for k, v in model.state_dict().items()}
    got = loaded.state_dict()
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in loaded.parameters())
    reference = get_spec("symunet").create("tiny").eval()
    reference.load_state_dict(expected)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), reference(x))


def test_training_only_parts_keep_their_initialisation():
    from airtool.models.weights import build_for_weights

    torch.manual_seed(0)
    expected = get_spec("ndr-restore").create("tiny").state_dict()
    torch.manual_seed(0)
    built = build_for_weights(get_spec("ndr-restore"), "tiny").state_dict()  # NDR-Degrad is not in the weights
    assert all(torch.equal(built[k], v) for k, v in expected.items())
