"""tools/bench_openvino.py: without openvino installed, one clear line, not a traceback."""

from __future__ import annotations

import sys

import pytest
import torch

from tools.bench_openvino import compile_openvino


def test_missing_openvino_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(SystemExit, match="pip install openvino"):
        compile_openvino(torch.nn.Identity(), torch.zeros(1, 3, 8, 8), threads=1)
