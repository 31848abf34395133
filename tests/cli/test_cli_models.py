"""``airtool models``: quick (no torch), the default marked, and whole names when piped."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from airtool.models import DEFAULT_MODEL, model_names


def _models(*args: str) -> subprocess.CompletedProcess:
    """``airtool models`` in a fresh interpreter, its stdout a pipe, with import timings on stderr."""
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "airtool", "models", *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "40"})


def test_piped_models_are_plain_whole_columns_without_torch():
    proc = _models()
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert imported and not [name for name in imported if name.split(".")[0] == "torch"]
    header, *lines = proc.stdout.splitlines()
    assert header.split() == ["model", "default", "params", "weights", "trained_for", "not_trained_for", "measured"]
    rows = [line.split() for line in lines]
    assert {row[0] for row in rows} == set(model_names())  # each name whole, even in 40 columns
    assert [row[0] for row in rows if row[1] == "yes"] == [DEFAULT_MODEL]
    assert all(len(row) == 7 for row in rows)  # one word per column
    assert any(row[3] == "symunet-s-aio3.safetensors" and row[4] == "noise,rain,haze" for row in rows)


def test_json_marks_the_default_and_matches_the_specs_facts():
    proc = _models("--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    assert [row["name"] for row in rows if row["default"]] == [DEFAULT_MODEL]
    assert {row["name"] for row in rows} == set(model_names())
    assert all("torch" not in line.split("|")[-1] for line in proc.stderr.splitlines())
