"""CPU ``--precision auto``: bf16 only where one timed pass says it is faster here, kept per CPU."""

from __future__ import annotations

import json

import pytest
import torch

from airtool.engine.hardware import precision as cpu_precision, device
from airtool.engine.inference.load import load_restorer


@pytest.fixture(autouse=True)
def _bf16_hardware(monkeypatch, tmp_path):
    """A CPU that claims bf16 hardware, a cache of its own, one thread."""
    torch.set_num_threads(1)
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    monkeypatch.delenv("AIRTOOL_CPU_BF16", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))


def _timings(monkeypatch, fp32: float, bf16: float) -> list[str]:
    calls: list[str] = []

    def fake(restorer, precision):
        calls.append(precision)
        return {"fp32": fp32, "bf16": bf16}[precision]

    monkeypatch.setattr(cpu_precision, "_time_pass", fake)
    return calls


def _load(precision: str = "auto"):
    return load_restorer("symunet-s", variant="tiny", device="cpu", precision=precision, random_seed=0)


def test_bf16_is_kept_where_it_measured_faster(monkeypatch):
    calls = _timings(monkeypatch, fp32=1.0, bf16=0.5)
    assert _load().runtime.precision == "bf16"
    assert sorted(calls) == ["bf16", "fp32"]


def test_fp32_is_taken_where_bf16_is_not_clearly_faster(monkeypatch):
    _timings(monkeypatch, fp32=1.0, bf16=0.95)
    assert _load().runtime.precision == "fp32"


def test_the_answer_is_measured_once_per_cpu_and_model(monkeypatch, tmp_path):
    calls = _timings(monkeypatch, fp32=1.0, bf16=1.3)
    assert _load().runtime.precision == "fp32"
    assert _load().runtime.precision == "fp32"
    assert len(calls) == 2  # the second load read the cache
    assert (tmp_path / "airtool" / cpu_precision.CACHE_NAME).is_file()


def test_an_explicit_precision_or_the_override_is_never_measured(monkeypatch):
    calls = _timings(monkeypatch, fp32=1.0, bf16=5.0)
    assert _load("bf16").runtime.precision == "bf16"
    monkeypatch.setenv("AIRTOOL_CPU_BF16", "1")
    assert _load().runtime.precision == "bf16"
    assert calls == []


def test_a_real_measurement_gives_a_precision_and_two_timings():
    restorer = _load()
    entry = next(iter(json.loads(cpu_precision.autotile.cache_path(cpu_precision.CACHE_NAME).read_text()).values()))
    assert restorer.runtime.precision == entry["precision"] in ("fp32", "bf16")
    assert set(entry["seconds"]) == {"fp32", "bf16"} and all(s > 0 for s in entry["seconds"].values())
