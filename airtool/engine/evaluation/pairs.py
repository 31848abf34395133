"""Benchmark pairs: ``input/`` and ``target/`` matched by file stem (SOTS' ``0001_0.8_0.2.jpg``
falls back to the part before the first ``_``), or a clean folder whose noisy inputs are made
the papers' way; each pair read and cropped as its protocol says."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from airtool.engine.evaluation.protocols import EvalProtocol, Task, noise_stream, synth_noise
from airtool.errors import InputError, UsageError
from airtool.io.folders import list_images, read_rgb
from airtool.metrics import center_crop_to_multiple


@dataclass(frozen=True)
class Pair:
    name: str
    target: Path
    input: Path | None  # None: synthesise the degraded input (noise from a clean folder)


def find_pairs(folder: Path, task: Task | None) -> list[Pair]:
    """Pairs of ``folder/input`` and ``folder/target`` by stem, or clean images for ``noise:σ``.

    Raises ``UsageError`` when the folder is missing, holds no pairs, or is clean-only without
    a noise task.
    """
    if not folder.is_dir():
        raise UsageError(f"{folder}: data folder not found")
    if (folder / "input").is_dir() and (folder / "target").is_dir():
        targets = {p.stem: p for p in list_images(folder / "target")}
        pairs = []
        for inp in list_images(folder / "input"):
            target = targets.get(inp.stem) or targets.get(inp.stem.split("_")[0])
            if target is not None:
                pairs.append(Pair(inp.stem, target, inp))
        if not pairs:
            raise UsageError(f"{folder}: no input/target pairs with matching file stems")
        return pairs
    if task is None or task.name != "noise":
        raise UsageError(f"{folder}: no input/ and target/ folders; a clean-only folder needs --task noise:SIGMA")
    clean = list_images(folder)
    if not clean:
        raise UsageError(f"{folder}: no images")
    return [Pair(p.stem, p, None) for p in clean]


def _shape(path: Path, crop: int) -> tuple[int, int, int]:
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
    return (h - h % crop, w - w % crop, 3) if crop > 1 else (h, w, 3)


def iter_inputs(
    pairs: list[Pair], task: Task | None, protocol: EvalProtocol
) -> Iterator[tuple[Pair, np.ndarray, np.ndarray]]:
    """(pair, degraded, target) arrays after the protocol's crop, noise made in file order."""
    is_noise = task is not None and task.name == "noise"
    crop = protocol.crop_multiple if (is_noise or not protocol.crop_noise_only) else 1
    rng = None
    if is_noise and any(p.input is None for p in pairs):
        assert task is not None and task.sigma is not None
        rng = noise_stream(protocol, task.sigma, [_shape(p.target, crop) for p in pairs])
    for pair in pairs:
        target = read_rgb(pair.target)
        if crop > 1:
            target = center_crop_to_multiple(target, crop)
        if pair.input is None:
            assert rng is not None and task is not None and task.sigma is not None
            degraded = synth_noise(target, task.sigma, rng, protocol.noise)
        else:
            degraded = read_rgb(pair.input)
            degraded = center_crop_to_multiple(degraded, crop) if crop > 1 else degraded
        if degraded.shape != target.shape:
            where = pair.input or pair.target
            raise InputError(where, f"size {degraded.shape[:2]} differs from target {target.shape[:2]}")
        yield pair, degraded, target


