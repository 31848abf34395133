"""Tab completion offers model and preset names, without importing torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _complete(words: str) -> tuple[list[str], str]:
    env = {**os.environ, "_AIRTOOL_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - 1 + words.endswith(" "))}
    script = Path(sys.executable).with_name("airtool")  # the installed command: its name picks _AIRTOOL_COMPLETE
    proc = subprocess.run([sys.executable, "-X", "importtime", str(script)], env=env, capture_output=True, text=True,
                          timeout=60)
    return proc.stdout.split(), proc.stderr


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("airtool restore --model sy", ["symunet", "symunet-s"]),
        ("airtool evaluate -m da", ["daair"]),
        ("airtool bench -m daair,any", ["daair,anyir"]),
        ("airtool train --config daair-", ["daair-aio3", "daair-aio5", "daair-cpu-aio3", "daair-cpu-aio3-cont", "daair-cpu-aio3-cont-balance", "daair-gpu-aio3"]),
    ],
)
def test_model_and_preset_names_complete(words, expected):
    offered, imports = _complete(words)
    assert offered == expected
    assert " torch\n" not in imports and "| torch\n" not in imports  # completion stays fast
