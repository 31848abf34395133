"""Folders of training and evaluation images: which files count, their listing, reading one as RGB.

``airtool train`` (``engine.data``) and ``airtool evaluate`` (``engine.evaluate``) read their
folders through these, so both see the same files and the same pixels:

- ``IMAGE_SUFFIXES``: the still-image formats airtool decodes (``io.image.FORMAT_BY_SUFFIX``)
  without GIF, matched case-insensitively. ``restore`` and ``degrade`` plan their inputs with
  ``io.paths`` instead, which also takes GIF and skips airtool's temporary files.
- ``list_images(folder)``: the images directly in ``folder``, hidden files skipped, sorted by
  path (so file order, and with it the papers' noise stream, does not depend on the file system).
- ``read_rgb(path)``: float32 (H, W, 3) in [0, 1] as ``io.image.read_image`` decodes it (EXIF
  orientation applied, 16-bit and float kept at full precision, alpha dropped); grey is
  replicated to three channels, as PromptIR's ``convert('RGB')`` does.

Importing this module imports numpy only; ``read_rgb`` loads the image reader on first use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: Path) -> list[Path]:
    """The images directly in ``folder`` (by ``IMAGE_SUFFIXES``; hidden files skipped), sorted."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def read_rgb(path: Path) -> np.ndarray:
    """Float32 (H, W, 3) in [0, 1]; grey images are replicated to three channels."""
    from airtool.io.image import read_image

    return as_rgb(read_image(path).pixels)


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 1 or 3) pixels as a contiguous float32 (H, W, 3) array, grey replicated."""
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[..., :3], dtype=np.float32)
