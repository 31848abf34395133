"""tools.bench_train: one measurement in-process, with and without the profiler's table, and
spread over DDP ranks."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys

import pytest

from tools import child_env
from tools.bench_train import _one_command, main, measure_step, mode_ranks


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


@pytest.mark.slow
def test_ranks_measure_one_step_spread_over_ddp_processes(tmp_path):
    """``--ranks 2``: two torchrun ranks (gloo), each with half the batch and threads; rank 0
    reports the whole step, so the row keeps the global batch and thread count."""
    out = tmp_path / "rows.jsonl"
    cmd = [sys.executable, "-m", "tools.bench_train", "--models", "symunet-s", "--sizes", "32",
           "--modes", "default", "--steps", "1", "--warmup", "0", "--threads", "2", "--batch", "4",
           "--ranks", "2", "--data-root", "/nonexistent", "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=child_env({**os.environ, "OMP_NUM_THREADS": "1"}),
                          timeout=300)
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (row["ranks"], row["batch"], row["threads"]) == (2, 4, 2)
    assert row["samples_per_s"] == 4 / row["seconds_per_step"]
    assert "as 2 DDP ranks" in done.stdout


def test_ranks_must_divide_the_batch_and_threads():
    with pytest.raises(SystemExit, match="must divide"):
        main(["--models", "symunet-s", "--batch", "3", "--threads", "2", "--ranks", "2"])
    with pytest.raises(SystemExit, match="2 ranks must divide"):
        main(["--models", "symunet-s", "--batch", "3", "--threads", "2", "--modes", "baseline,ddp"])


def test_ddp_mode_is_one_rank_per_thread_beside_single_process_modes():
    args = argparse.Namespace(threads=2, ranks=1, batch=8, warmup=0, steps=1, data_root="d", profile=0)
    assert [mode_ranks(args, m) for m in ("baseline", "default", "ddp", "loader")] == [1, 1, 2, 1]
    single, ddp = _one_command(args, "daair", "64", "default"), _one_command(args, "daair", "64", "ddp")
    assert "torch.distributed.run" not in single and single[single.index("--batch") + 1] == "8"
    assert "--nproc-per-node=2" in ddp
    assert ddp[ddp.index("--batch") + 1] == "4" and ddp[ddp.index("--threads") + 1] == "1"


def test_warm_loader_fills_the_cache_with_every_image_before_timing(tmp_path, monkeypatch):
    """``loader-warm``: every training image decoded (and haze's depth made) before the timed batches."""
    import numpy as np
    from PIL import Image

    from airtool.engine.training.train import load_train_config
    from tools import bench_train

    rng = np.random.default_rng(0)
    (tmp_path / "clean").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "clean" / f"{i}.png")
    sources = [{"path": "clean", "task": "noise", "sigmas": [25]}, {"path": "clean", "task": "haze"}]

    def tiny(model, size, batch, mode, data_root):
        return load_train_config("symunet-s-aio3", [f"data.root={data_root}", f"data.crop={size}",
                                                    f"data.batch_size={batch}", f"data.sources={json.dumps(sources)}"])

    monkeypatch.setattr(bench_train, "config_for", tiny)
    result = bench_train.measure_warm_loader("symunet-s", 32, 2, 2, str(tmp_path))
    assert result["samples_per_s"] == 2 / result["seconds_per_step"] and result["workers"] == 0
    per_image = 48 * 48 * 3  # uint8 levels
    depth = 48 * 48 * 4  # haze's float32 map, per image
    assert result["cache_mb"] * 2**20 == 3 * per_image + 3 * depth


@pytest.mark.slow
def test_a_failed_measurement_is_named_and_the_run_exits_non_zero(capsys):
    """A measurement whose process fails is reported with its last words, the others go on, and
    the run ends non-zero naming it (a bare exit 0 had hidden a rank that aborted)."""
    with pytest.raises(SystemExit, match=r"1 of 1 measurements failed: no-such-model 32 default"):
        main(["--models", "no-such-model", "--sizes", "32", "--modes", "default", "--steps", "1",
              "--warmup", "0", "--threads", "1", "--batch", "2"])
    assert "no-such-model 32 default: KeyError" in capsys.readouterr().err
