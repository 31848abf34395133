"""``airtool bench`` end to end: JSON lines, the table, and one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from airtool.cli import app

runner = CliRunner()
FAST = ["--repeats", "1", "--warmup", "0", "--device", "cpu", "--variant", "tiny"]


def test_json_gives_one_object_per_configuration() -> None:
    result = runner.invoke(app, ["bench", "-m", "symunet-s", "-s", "32,48", "-p", "fp32,bf16", "--json", *FAST])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 4
    for row in rows:
        assert {"model", "size", "precision", "device", "ms_per_image", "images_per_second", "peak_host_mb",
                "peak_device_mb", "gflops", "macs_per_image"} <= row.keys()
        assert row["model"] == "symunet-s" and row["device"] == "cpu" and row["ms_per_image"] > 0
    assert {(r["size"], r["precision"]) for r in rows} == {(32, "fp32"), (48, "fp32"), (32, "bf16"), (48, "bf16")}


def test_table_lists_each_model() -> None:
    result = runner.invoke(app, ["bench", "-m", "symunet-s,daair", "-s", "32", *FAST])
    assert result.exit_code == 0, result.output
    assert "symunet-s" in result.stdout and "daair" in result.stdout and "GFLOP/s" in result.stdout


def test_unknown_model_is_one_line() -> None:
    result = runner.invoke(app, ["bench", "-m", "nope", *FAST])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "unknown model 'nope'" in result.stderr


def test_bad_size_is_a_usage_error() -> None:
    result = runner.invoke(app, ["bench", "-s", "big"])
    assert result.exit_code == 2 and "sizes in pixels" in result.output


def test_first_line_names_the_cpu_and_json_rows_carry_it() -> None:
    from airtool.engine.hardware.cpuinfo import read_cpu

    cpu = read_cpu()
    table = runner.invoke(app, ["bench", "-m", "symunet-s", "-s", "16", *FAST])
    assert table.exit_code == 0, table.output
    first = table.stdout.splitlines()[0]
    assert first.startswith(f"CPU: {cpu.model}") and "torch kernels" in first
    assert all(flag in first for flag in cpu.vector)
    assert "CPU peak" in table.stdout and "% peak" in table.stdout  # the peak line and column too
    rows = runner.invoke(app, ["bench", "-m", "symunet-s", "-s", "16", "--json", *FAST])
    assert json.loads(rows.stdout.splitlines()[0])["cpu"].startswith(cpu.model)


@pytest.mark.slow
def test_progress_on_a_terminal_reports_each_configuration_as_it_finishes(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "TERM": "xterm", "COLUMNS": "120"}
    args = [sys.executable, "-m", "airtool", "bench", "-m", "symunet-s", "-s", "16,24", "-p", "fp32", "--json", *FAST]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "symunet-s 16px fp32: " in proc.stderr and "symunet-s 24px fp32: " in proc.stderr
    quiet = subprocess.run(args, env={**os.environ, "TTY_COMPATIBLE": "0"}, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and quiet.stderr == ""  # not a terminal: no progress
