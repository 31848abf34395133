"""Image folders shared by training and evaluation: which files count, their order, the pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from airtool.io import folders
from airtool.io.image import FORMAT_BY_SUFFIX
from airtool.io.paths import IMAGE_SUFFIXES as RESTORE_SUFFIXES


def test_suffixes_are_the_decoded_formats_without_gif():
    assert set(folders.IMAGE_SUFFIXES) == {s for s, fmt in FORMAT_BY_SUFFIX.items() if fmt != "GIF"}
    assert RESTORE_SUFFIXES == set(folders.IMAGE_SUFFIXES) | {".gif"}  # restore also takes GIF


def test_listing_is_sorted_flat_and_skips_hidden_and_other_files(tmp_path: Path):
    for name in ("b.png", "a.JPG", "c.tiff", ".hidden.png", "notes.txt", "anim.gif", "sub/d.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in folders.list_images(tmp_path)] == ["a.JPG", "b.png", "c.tiff"]


def test_read_rgb_replicates_grey_drops_alpha_and_keeps_16_bit(tmp_path: Path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    deep = rng.integers(0, 65536, (4, 6), dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(deep).save(tmp_path / "deep.png")

    out = folders.read_rgb(tmp_path / "grey.png")
    assert out.shape == (5, 7, 3) and out.dtype == np.float32 and out.flags.c_contiguous
    assert all(np.array_equal(out[..., c], grey / np.float32(255)) for c in range(3))
    out = folders.read_rgb(tmp_path / "rgba.png")
    assert out.shape == (5, 7, 3) and np.array_equal(out, rgba[..., :3] / np.float32(255))
    out = folders.read_rgb(tmp_path / "deep.png")
    assert np.array_equal(np.round(out[..., 0].astype(np.float64) * 65535), deep)  # not reduced to 8 bits


def test_training_and_evaluation_read_through_these():
    from airtool.engine.evaluation import pairs as eval_pairs
    from airtool.engine.training import data

    assert data.read_rgb is folders.read_rgb is eval_pairs.read_rgb
    assert data.list_images is folders.list_images is eval_pairs.list_images
