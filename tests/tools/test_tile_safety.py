"""tools.tile_safety: PSNR with tiles against the whole image, and the smallest safe tile."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from tools.tile_safety import main, safe_tile


def test_the_safe_tile_is_the_smallest_within_tolerance_either_way_with_every_larger_one():
    assert safe_tile({128: -1.5, 256: -0.3, 384: -0.04, 448: 0.05}, 0.05) == 384
    assert safe_tile({128: -0.01, 256: -0.3, 384: 0.0}, 0.05) == 384  # a lucky small tile does not count
    assert safe_tile({256: 1.0, 384: 0.3, 512: 0.01}, 0.05) == 512  # a higher mean is a change too
    assert safe_tile({384: -0.2, 512: -0.1}, 0.05) == 0  # none: the whole image only


def test_a_model_that_sees_only_pixels_loses_nothing_to_tiles(tmp_path, capsys):
    """The identity model: tiled and whole agree, so the smallest tile measured is safe."""
    rng = np.random.default_rng(0)
    for side in ("input", "target"):
        (tmp_path / side).mkdir()
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (96, 112, 3), dtype=np.uint8)).save(tmp_path / "input" / f"{name}.png")
        Image.fromarray(rng.integers(0, 256, (96, 112, 3), dtype=np.uint8)).save(tmp_path / "target" / f"{name}.png")
    main(["-m", "identity", "--data", str(tmp_path), "--tiles", "48,64", "--overlap", "8", "--stop-early"])
    *rows, summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["tile"] for r in rows] == [64, 48] and all(r["delta_db"] == 0 for r in rows)
    assert summary["safe_tile"] == 48 and summary["count"] == 2
