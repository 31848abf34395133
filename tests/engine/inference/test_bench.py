"""bench: MAC counting, the memory sampler and the timed results."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from airtool.engine.hardware.peak_rss import PeakRSS
from airtool.engine.inference.bench import BenchOptions, count_macs, run_bench
from airtool.errors import UsageError


def test_count_macs_of_a_known_convolution() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_macs(conv, 20) == 8 * 3 * 9 * 20 * 20


def test_count_macs_grows_with_pixels_for_channel_attention_models() -> None:
    from airtool.models import get_spec

    model = get_spec("symunet").create("tiny")  # transposed attention is linear in the pixel count
    small = count_macs(model, 32)
    assert small > 0 and count_macs(model, 64) == pytest.approx(4 * small, rel=0.03)


def test_count_macs_falls_back_to_the_cpu_for_ops_without_meta_kernels() -> None:
    from airtool.models import get_spec

    model = get_spec("daair").create("tiny")  # its router uses bincount, which has no meta kernel
    assert count_macs(model, 32) > 0


def test_peak_rss_sees_a_temporary_allocation() -> None:
    with PeakRSS(interval=0.001) as rss:
        start = rss.current()
        block = np.ones(64 * 2**20 // 8)  # 64 MB, touched
        block += 1
        time.sleep(0.05)  # torch ops release the GIL; numpy's fill may not, so give the sampler a turn
        del block
    assert rss.peak - start >= 48 * 2**20


def test_run_bench_reports_every_configuration() -> None:
    options = BenchOptions(models=("symunet-s",), sizes=(32, 64), precisions=("fp32", "bf16"), device="cpu",
                           warmup=0, repeats=1, variant="tiny")
    results = list(run_bench(options))
    assert [(r.precision, r.size) for r in results] == [("fp32", 32), ("fp32", 64), ("bf16", 32), ("bf16", 64)]
    for r in results:
        assert r.ms_per_image > 0 and r.images_per_second == pytest.approx(1000 / r.ms_per_image, rel=1e-2)
        assert r.peak_host_mb > 0 and r.peak_device_mb is None and r.device == "cpu"
        assert r.gflops == pytest.approx(2 * r.macs_per_image / r.ms_per_image / 1e6, rel=2e-2, abs=0.06)  # rounded to 0.1
    assert results[1].macs_per_image == pytest.approx(4 * results[0].macs_per_image, rel=0.03)


def test_batch_divides_the_time_per_image() -> None:
    options = BenchOptions(models=("identity",), sizes=(16,), device="cpu", batch_size=4, warmup=0, repeats=1)
    (result,) = run_bench(options)
    assert result.batch == 4 and result.macs_per_image == 0


@pytest.mark.parametrize("bad", [dict(sizes=()), dict(sizes=(4,)), dict(batch_size=0), dict(repeats=0)])
def test_bad_options_are_usage_errors(bad: dict) -> None:
    with pytest.raises(UsageError):
        BenchOptions(**bad)


def test_precision_outside_the_model_policy_is_refused() -> None:
    from airtool.errors import DeviceError

    with pytest.raises(DeviceError, match="fp16"):
        list(run_bench(BenchOptions(models=("symunet-s",), sizes=(32,), precisions=("fp16",), device="cpu")))


def test_progress_hears_every_step_as_it_happens_and_results_name_the_cpu() -> None:
    events: list[tuple[int, int, str]] = []
    options = BenchOptions(models=("symunet-s",), sizes=(16, 24), precisions=("fp32",), device="cpu", warmup=1,
                           repeats=2, variant="tiny")
    results = []
    for result in run_bench(options, lambda done, total, label: events.append((done, total, label))):
        results.append(result)
        done_before_next = events[-1][0]
        assert done_before_next == len(results) * 4  # MAC count, warm-up and two runs, reported before the result
    assert {total for _, total, _ in events} == {8}
    finished = [label for (done, _, label), (before, _, _) in zip(events[1:], events, strict=False) if done == before + 1]
    assert len(finished) == 8
    assert finished[:2] == ["symunet-s 16px fp32: counted MACs", "symunet-s 16px fp32: warm-up 1/1"]
    assert finished[2].startswith("symunet-s 16px fp32: run 1/2") and finished[7].startswith("symunet-s 24px fp32: run 2/2")
    assert "cores" in results[0].cpu and "torch kernels" in results[0].cpu


def test_results_carry_the_fraction_of_the_cpu_peak() -> None:
    from airtool.engine.hardware.cpu_peak import this_cpu

    peak = this_cpu().gflops("fp32", 1)
    if peak is None:
        pytest.skip("no CPU clock known on this machine")
    torch.set_num_threads(1)
    options = BenchOptions(models=("symunet-s",), sizes=(32,), precisions=("fp32",), device="cpu", warmup=0, repeats=1,
                           variant="tiny", threads=1)
    (r,) = run_bench(options)
    assert r.peak_gflops == pytest.approx(peak, abs=0.1)
    assert r.fraction_of_peak == pytest.approx(r.gflops / r.peak_gflops, abs=2e-3) and 0 < r.fraction_of_peak < 1
