"""The one precision resolver: named precisions checked against a model's policy, ``auto`` per
device and workload, and on a CPU bf16 only where one timed pass says it is faster here (kept per CPU)."""

from __future__ import annotations

import json

import pytest
import torch

from airtool.config import from_dict
from airtool.engine.hardware import precision as hardware_precision
from airtool.engine.hardware import timing_cache
from airtool.engine.hardware.precision import CpuTiming, PassTime, resolve_precision
from airtool.engine.inference import infer
from airtool.engine.inference.load import load_restorer
from airtool.engine.training.config import LoopConfig
from airtool.engine.training.precision import train_precision
from airtool.errors import ConfigError, DeviceError
from airtool.models import get_spec
from airtool.models.spec import PrecisionPolicy

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")
BF16_ON_CPU = PrecisionPolicy(cpu=("fp32", "bf16"), auto_cpu="bf16")


@pytest.fixture(autouse=True)
def _bf16_hardware(monkeypatch, tmp_path):
    """A CPU that claims bf16 hardware, a cache of its own, one thread."""
    torch.set_num_threads(1)
    monkeypatch.setattr(hardware_precision, "cpu_has_native_bf16", lambda: True)
    monkeypatch.delenv("AIRTOOL_CPU_BF16", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))


def _timings(monkeypatch, fp32: float, bf16: float, disturbed: bool = False) -> list[str]:
    calls: list[str] = []

    def fake(model, spec, device, precision):
        calls.append(precision)
        return PassTime({"fp32": fp32, "bf16": bf16}[precision], disturbed)

    monkeypatch.setattr(infer, "time_precision", fake)
    return calls


def _load(precision: str = "auto"):
    return load_restorer("symunet-s", variant="tiny", device="cpu", precision=precision, random_seed=0)


def _never_timed() -> CpuTiming:
    def refuse(*args: object) -> str:
        raise AssertionError("measured where nothing should be")

    return CpuTiming(key=refuse, seconds=refuse)


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
    assert (tmp_path / "airtool" / hardware_precision.CACHE_NAME).is_file()


def test_a_timing_taken_under_load_decides_this_run_only(monkeypatch, tmp_path):
    calls = _timings(monkeypatch, fp32=1.0, bf16=0.5, disturbed=True)
    assert _load().runtime.precision == "bf16"
    assert not (tmp_path / "airtool" / hardware_precision.CACHE_NAME).exists()
    assert _load().runtime.precision == "bf16"
    assert len(calls) == 4  # nothing was kept: the second load measured again


def test_a_real_pass_reports_whether_it_had_the_cpus():
    timed = infer.time_precision(_load("fp32").model, get_spec("symunet-s"), CPU, "fp32")
    assert timed.seconds > 0 and isinstance(timed.disturbed, bool)


def test_an_explicit_precision_or_the_override_is_never_measured(monkeypatch):
    calls = _timings(monkeypatch, fp32=1.0, bf16=5.0)
    assert _load("bf16").runtime.precision == "bf16"
    monkeypatch.setenv("AIRTOOL_CPU_BF16", "1")
    assert _load().runtime.precision == "bf16"
    assert calls == []


def test_with_precision_auto_measures_like_loading(monkeypatch):
    calls = _timings(monkeypatch, fp32=1.0, bf16=2.0)
    fp32 = _load("fp32")
    assert fp32.with_precision("auto") is fp32  # measured no faster: the same restorer
    assert fp32.with_precision("auto", measured=False).runtime.precision == "bf16"  # the policy alone
    assert sorted(calls) == ["bf16", "fp32"]


def test_a_real_measurement_gives_a_precision_and_two_timings():
    restorer = _load()
    cache = timing_cache.cache_path(hardware_precision.CACHE_NAME)
    entry = next(iter(json.loads(cache.read_text()).values()))
    assert restorer.runtime.precision == entry["precision"] in ("fp32", "bf16")
    assert set(entry["seconds"]) == {"fp32", "bf16"} and all(s > 0 for s in entry["seconds"].values())
    assert entry["side"] == hardware_precision.PROBE_SIDE


def test_restore_and_training_ask_the_one_resolver(monkeypatch):
    """load_restorer (restore, evaluate, bench), Restorer.with_precision (bench) and training."""
    asked: list[tuple[str, str]] = []
    real = hardware_precision.resolve_precision

    def spy(policy, device, requested="auto", **kwargs):
        asked.append((kwargs.get("workload", "inference"), requested))
        return real(policy, device, requested, **kwargs)

    monkeypatch.setattr(hardware_precision, "resolve_precision", spy)
    _load("fp32").with_precision("bf16")
    train_precision(from_dict(LoopConfig, {"steps": 1, "precision": "bf16"}), get_spec("symunet"), CPU)
    assert asked == [("inference", "fp32"), ("inference", "bf16"), ("training", "bf16")]


@pytest.mark.parametrize("workload", ["inference", "training"])
def test_a_named_precision_the_policy_allows_is_taken_as_is(workload):
    for name in ("fp32", "bf16"):
        assert resolve_precision(BF16_ON_CPU, CPU, name, workload=workload, measure=_never_timed()) == name


def test_inference_refuses_names_outside_the_policy_with_a_device_error():
    with pytest.raises(DeviceError, match=r"precision fp16 is not validated for this model on cpu \(allowed: fp32, bf16\)"):
        resolve_precision(BF16_ON_CPU, CPU, "fp16")
    with pytest.raises(DeviceError, match="unknown precision 'int8'; use auto, fp32, bf16 or fp16"):
        resolve_precision(BF16_ON_CPU, CPU, "int8")


def test_training_refuses_with_a_config_error_naming_train_precision():
    with pytest.raises(ConfigError, match="train.precision: fp16 needs a CUDA device, not cpu; use bf16 or fp32"):
        resolve_precision(PrecisionPolicy(cpu=("fp32", "bf16", "fp16")), CPU, "fp16", workload="training")
    fp32_only = PrecisionPolicy(cpu=("fp32",))
    with pytest.raises(ConfigError, match=r"train.precision: bf16 is not validated for daair on cpu \(allowed: fp32\)"):
        resolve_precision(fp32_only, CPU, "bf16", workload="training", model="daair")
    assert resolve_precision(PrecisionPolicy(cpu=()), CPU, "fp32", workload="training") == "fp32"  # fp32 always trains


def test_auto_inference_follows_the_policy_and_the_cpus_bf16(monkeypatch):
    assert resolve_precision(PrecisionPolicy(auto_cuda="bf16"), CUDA) == "bf16"
    assert resolve_precision(PrecisionPolicy(mps=("fp32", "bf16")), MPS) == "fp32"
    assert resolve_precision(PrecisionPolicy(auto_cpu="fp32"), CPU, measure=_never_timed()) == "fp32"
    assert resolve_precision(BF16_ON_CPU, CPU) == "bf16"  # nothing to time: the policy and the hardware
    monkeypatch.setattr(hardware_precision, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision(BF16_ON_CPU, CPU, measure=_never_timed()) == "fp32"  # emulated bf16 is slower


def test_auto_inference_on_a_cpu_times_both_precisions_once_per_key():
    calls: list[str] = []

    def seconds(precision: str) -> PassTime:
        calls.append(precision)
        return PassTime({"fp32": 1.0, "bf16": hardware_precision.FASTER}[precision])

    timing = CpuTiming(key=lambda: "this cpu | this model", seconds=seconds)
    assert resolve_precision(BF16_ON_CPU, CPU, measure=timing) == "bf16"  # exactly FASTER x fp32 still counts
    assert resolve_precision(BF16_ON_CPU, CPU, measure=timing) == "bf16"
    assert sorted(calls) == ["bf16", "fp32"]


def test_auto_training_is_bf16_on_cuda_where_allowed_and_fp32_elsewhere(monkeypatch):
    monkeypatch.setenv("AIRTOOL_CPU_BF16", "1")  # even with bf16 hardware, CPU training stays fp32 under auto
    assert resolve_precision(PrecisionPolicy(auto_cuda="fp32"), CUDA, workload="training") == "bf16"
    assert resolve_precision(PrecisionPolicy(cuda=("fp32",)), CUDA, workload="training") == "fp32"
    assert resolve_precision(BF16_ON_CPU, CPU, workload="training", measure=_never_timed()) == "fp32"
    assert resolve_precision(PrecisionPolicy(mps=("fp32", "bf16")), MPS, workload="training") == "fp32"


@pytest.mark.parametrize(("override", "expected"), [("0", False), ("1", True)])
def test_the_environment_overrides_the_bf16_detection(monkeypatch, override, expected):
    monkeypatch.undo()  # the real detection, not the fixture's
    monkeypatch.setenv("AIRTOOL_CPU_BF16", override)
    assert hardware_precision.cpu_has_native_bf16() is expected
