"""devtools.bench_train: one measurement in-process, with and without the profiler's table."""

from __future__ import annotations

import contextlib
import io

from airtool.devtools.bench_train import measure_step


def _measure(profile: int) -> tuple[dict, str]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = measure_step("symunet-s", 32, 2, "default", warmup=0, steps=1, data_root="/nonexistent",
                              profile=profile)
    return result, printed.getvalue()


def test_measure_step_reports_a_positive_rate_and_prints_nothing_by_default():
    result, printed = _measure(profile=0)
    assert result["samples_per_s"] > 0
    assert result["seconds_per_step"] > 0
    assert printed == ""


def test_profile_prints_the_top_operators_of_the_timed_steps():
    _, printed = _measure(profile=4)
    assert "Self CPU" in printed
    assert "aten::" in printed  # an operator of the training step, e.g. a convolution
    op_rows = [line for line in printed.splitlines() if line.strip().startswith("aten::")]
    assert 1 <= len(op_rows) <= 4
