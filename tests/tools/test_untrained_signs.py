"""tools/untrained_signs.py: false alarms and misses are counted per set."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tools.untrained_signs import measure


def test_false_alarms_and_misses_are_counted_against_what_the_set_shows(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "set"
    folder.mkdir()
    scene = np.kron(rng.integers(0, 256, (12, 12, 3)), np.ones((8, 8, 1)))
    Image.fromarray(scene.astype(np.uint8)).save(folder / "bright.png")
    Image.fromarray((scene / 6).astype(np.uint8)).save(folder / "dark.png")
    clean = measure("clean", folder, None)
    assert (clean.images, clean.flagged, clean.wrong) == (2, {"lowlight": 1}, 1) and clean.rate == 0.5
    dark = measure("dark", folder, "lowlight")
    assert dark.wrong == 1  # bright.png does not look low light: a miss
