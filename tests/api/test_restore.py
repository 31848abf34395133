"""``api.restore``: the public surface (names, defaults, reporters); the run itself is the
engine's (tests/engine/inference/test_restore_run.py)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from PIL import Image

import airtool
from airtool import api
from airtool.errors import UsageError
from airtool.report import NullReporter, RunReport


def test_the_api_names_restore_and_its_options_and_building_blocks():
    for name in ("BatchOptions", "RestoreOptions", "restore", "build_restorer", "describe_weights", "shard"):
        assert name in api.__all__ and callable(getattr(api, name))
    assert airtool.restore is api.restore and airtool.RestoreOptions is api.RestoreOptions
    assert issubclass(api.DegradeOptions, api.BatchOptions) and issubclass(api.RestoreOptions, api.BatchOptions)


def test_restore_defaults_to_the_default_options_and_a_silent_reporter(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr("airtool.engine.inference.restore_run.run_restore",
                        lambda inputs, output, options, reporter: seen.append((options, reporter)) or RunReport())
    params = inspect.signature(api.restore).parameters
    assert list(params) == ["inputs", "output", "options", "reporter", "progress"]
    assert isinstance(api.restore(["in"], "out"), RunReport)
    assert seen[0][0] == api.RestoreOptions() and type(seen[0][1]) is NullReporter
    mine = NullReporter()
    api.restore(["in"], "out", reporter=mine, progress=True)
    assert seen[1][1] is mine  # a reporter given wins over progress


def test_bad_options_are_usage_errors_when_made():
    for bad in ({"quality": 0}, {"tile": "big"}, {"tile": 32, "tile_overlap": 32}, {"untrained": "drop"},
                {"crf": 64}, {"segment": 0}):
        with pytest.raises(UsageError):
            api.RestoreOptions(**bad)


def test_restore_writes_what_it_reports(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(src / "a.png")
    report = api.restore([str(src)], str(tmp_path / "out"), api.RestoreOptions(model="identity", device="cpu"))
    assert (report.exit_code, report.count("done")) == (0, 1)
    assert report.about["model"] == "identity" and (tmp_path / "out" / "a.png").is_file()
