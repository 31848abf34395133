"""The op registry, and the contract every registered op must pass: interface, shape, dtype,
range, purity, determinism, JSON-ready params, preset ranges. Parametrised over the registry,
so a new op is checked as soon as it is registered."""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
from collections.abc import Mapping

import numpy as np
import pytest
import torch

from airtool.degrade import OPS
from airtool.degrade.base import PRESETS, Choice, KeySpec, preset_ranges
from airtool.degrade.registry import NAMES, lookup
from airtool.errors import UsageError

OP_NAMES = list(NAMES)
BLUR_KINDS = OPS["blur"].KINDS


# ------------------------------------------------------------------ the registry


def test_registry_lists_the_ops_in_order():
    assert NAMES == ("noise", "rain", "haze", "blur", "lowlight", "jpeg")  # the order --help and errors use
    assert list(OPS) == OP_NAMES and len(OPS) == len(NAMES)
    for name in NAMES:
        assert name in OPS and OPS[name] is importlib.import_module(f"airtool.degrade.{name}") is lookup(name)
        assert OPS[name].NAME == name


def test_unknown_names_are_clear_errors():
    with pytest.raises(UsageError) as err:
        lookup("fog")
    assert str(err.value) == "unknown degradation 'fog' (choose from: noise, rain, haze, blur, lowlight, jpeg)"
    assert "fog" not in OPS and "base" not in OPS and "chain" not in OPS  # helper modules are not ops
    with pytest.raises(KeyError):
        OPS["chain"]


def test_the_names_come_without_torch():
    code = ("import sys\nfrom airtool.degrade.registry import NAMES\nfrom airtool.degrade import OPS\n"
            "print(list(OPS) == list(NAMES), 'torch' in sys.modules, 'numpy' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["True", "False", "False"], proc.stderr


# ------------------------------------------------------------------ every op's contract


@pytest.mark.parametrize("op", OP_NAMES)
def test_op_has_the_interface(op: str) -> None:
    module = OPS[op]
    assert dataclasses.is_dataclass(module.Params) and module.Params.__dataclass_params__.frozen
    assert callable(module.sample) and callable(module.apply)
    assert isinstance(module.KEYS, Mapping) and module.KEYS
    assert all(isinstance(spec, KeySpec) for spec in module.KEYS.values())
    assert set(module.KEYS) <= {f.name for f in dataclasses.fields(module.Params)}  # every key is a param
    # light / medium / heavy ranges; blur has one such table per kernel kind.
    tables = [module.PRESETS[kind] for kind in module.KINDS] if hasattr(module, "KINDS") else [module.PRESETS]
    assert all(isinstance(t, Mapping) and set(t) == set(PRESETS) for t in tables)


def _image(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)


@pytest.mark.parametrize("op", OP_NAMES)
@pytest.mark.parametrize("shape", [(3, 33, 47), (3, 37, 52), (2, 3, 33, 40), (1, 30, 41), (2, 1, 24, 24)])
def test_shape_dtype_range(op: str, shape: tuple[int, ...]) -> None:
    img = _image(shape)
    before = img.clone()
    for preset in (*PRESETS, None):
        params = OPS[op].sample(np.random.default_rng(1), preset)
        for rng in (None, np.random.default_rng(2)):
            out = OPS[op].apply(img, params, rng)
            assert out.shape == img.shape and out.dtype == img.dtype
            assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
            assert torch.isfinite(out).all()
            assert out.data_ptr() != img.data_ptr()
    assert torch.equal(img, before), "apply must not modify its input"


@pytest.mark.parametrize("op", OP_NAMES)
def test_float64_input_keeps_dtype(op: str) -> None:
    img = _image((3, 20, 24), torch.float64)
    out = OPS[op].apply(img, OPS[op].sample(np.random.default_rng(0), "medium"))
    assert out.dtype == torch.float64 and out.shape == img.shape


@pytest.mark.parametrize("op", OP_NAMES)
def test_deterministic_from_params_and_from_rng(op: str) -> None:
    img = _image((3, 48, 40))
    p1 = OPS[op].sample(np.random.default_rng(7), "heavy")
    p2 = OPS[op].sample(np.random.default_rng(7), "heavy")
    assert p1 == p2
    assert torch.equal(OPS[op].apply(img, p1), OPS[op].apply(img, p2))
    a = OPS[op].apply(img, p1, np.random.default_rng(11))
    b = OPS[op].apply(img, p1, np.random.default_rng(11))
    assert torch.equal(a, b)


@pytest.mark.parametrize("op", ["noise", "rain", "lowlight"])
def test_per_pixel_randomness_follows_seed(op: str) -> None:
    img = torch.full((3, 40, 40), 0.5)
    p = OPS[op].sample(np.random.default_rng(0), "medium")
    other = dataclasses.replace(p, seed=p.seed + 1)
    assert not torch.equal(OPS[op].apply(img, p), OPS[op].apply(img, other))


def _ranges(op: str, preset: str, kind: str | None = None) -> dict:
    table = OPS[op].PRESETS[kind] if kind else OPS[op].PRESETS
    return preset_ranges(op, table, preset)


def _sampled(op: str) -> list[tuple[str, str | None, dict]]:
    """(preset, blur kind, fixed) combinations to draw from."""
    if op == "blur":
        return [(p, k, {"kind": k}) for p in PRESETS for k in BLUR_KINDS]
    return [(p, None, {}) for p in PRESETS]


@pytest.mark.parametrize("op", OP_NAMES)
def test_sampled_params_within_preset_ranges(op: str) -> None:
    rng = np.random.default_rng(2024)
    for preset, kind, fixed in _sampled(op):
        ranges = _ranges(op, preset, kind)
        for _ in range(25):
            params = OPS[op].sample(rng, preset, **fixed)
            for key, dist in ranges.items():
                value = getattr(params, key)
                assert dist.contains(value), f"{op} {preset} {key}={value} outside {dist}"
                if not isinstance(dist, Choice):
                    assert OPS[op].KEYS[key].lo <= value <= OPS[op].KEYS[key].hi


@pytest.mark.parametrize("op", OP_NAMES)
def test_presets_nest_and_none_spans_all(op: str) -> None:
    kinds = BLUR_KINDS if op == "blur" else (None,)
    for kind in kinds:
        any_ranges = _ranges(op, None, kind)  # type: ignore[arg-type]
        for preset in PRESETS:
            for key, dist in _ranges(op, preset, kind).items():
                if isinstance(dist, Choice):
                    assert set(dist.values) <= set(any_ranges[key].values)
                else:
                    assert any_ranges[key].lo <= dist.lo <= dist.hi <= any_ranges[key].hi


@pytest.mark.parametrize("op", OP_NAMES)
@pytest.mark.parametrize("preset", [*PRESETS, None])
def test_params_json_round_trip(op: str, preset: str | None) -> None:
    params = OPS[op].sample(np.random.default_rng(5), preset)
    text = json.dumps(dataclasses.asdict(params), allow_nan=False)
    assert OPS[op].Params(**json.loads(text)) == params


@pytest.mark.parametrize("op", OP_NAMES)
def test_fixed_keys_override_without_shifting_others(op: str) -> None:
    key, value = {
        "noise": ("sigma", 33.0),
        "rain": ("angle", 12.0),
        "haze": ("A", 0.95),
        "blur": ("length", 9.0),
        "lowlight": ("ev", -3.0),
        "jpeg": ("quality", 42),
    }[op]
    free = OPS[op].sample(np.random.default_rng(9), "light")
    pinned = OPS[op].sample(np.random.default_rng(9), "light", **{key: value})
    assert getattr(pinned, key) == value
    others = {f.name for f in dataclasses.fields(free)} - {key, "kernel"}
    assert all(getattr(free, k) == getattr(pinned, k) for k in others)


@pytest.mark.parametrize("op", OP_NAMES)
def test_bad_fixed_key_and_preset_are_usage_errors(op: str) -> None:
    with pytest.raises(UsageError, match="unknown key 'bogus'"):
        OPS[op].sample(np.random.default_rng(0), "light", bogus=1)
    with pytest.raises(UsageError, match="unknown preset"):
        OPS[op].sample(np.random.default_rng(0), "extreme")


@pytest.mark.parametrize("bad", [torch.zeros(3, 8), torch.zeros(2, 8, 8), torch.zeros(3, 8, 8, dtype=torch.uint8)])
def test_bad_images_are_rejected(bad: torch.Tensor) -> None:
    params = OPS["noise"].Params()
    with pytest.raises((TypeError, ValueError)):
        OPS["noise"].apply(bad, params)
