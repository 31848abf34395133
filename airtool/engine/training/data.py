"""Training and validation data for ``airtool train``.

Sources are paired folders (``input/`` + ``target/``, matched by file stem) or clean folders
degraded on the fly (noise with the papers' σ ∈ {15, 25, 50}; rain, haze, blur and low light
through ``airtool.degrade``). A mixture draws each sample from a source with probability
proportional to its ``weight`` (the papers' per-task repeat factors, e.g. PromptIR's
``utils/dataset_utils.py``: each σ list ×3, Rain100L ×120).

Reproducibility: sample ``k`` of a run (counted over the whole run and all ranks) is a pure
function of ``(seed, k)``: its own numpy Generator picks the source, the file, the crop, the
flip/rotation and the degradation. Resuming at step ``s`` therefore just starts the stream at
``k = s · batch · world``, and DataLoader workers and DDP ranks need no RNG bookkeeping.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from airtool.degrade.registry import NAMES, OPS
from airtool.errors import ConfigError
from airtool.io.folders import as_rgb, list_images, read_rgb
from airtool.tasks import task_index

# The benchmarks' test sets: never train on them.
EVALUATION_SETS = frozenset({"CBSD68", "BSD68", "Set12", "Rain100L", "SOTS_outdoor_mini"})
Augment = Literal["none", "flips-rot", "promptir", "hvflip"]


@dataclass(frozen=True)
class SourceConfig:
    """One folder of training images."""

    path: str  # relative to ``DataConfig.root`` unless absolute
    task: str  # airtool.tasks name: noise, rain, haze, blur, lowlight
    paired: bool = False  # input/ + target/ by stem; otherwise clean images degraded on the fly
    weight: float = 1.0  # share of the mixture (relative)
    sigmas: tuple[float, ...] = (15.0, 25.0, 50.0)  # noise σ on the 0-255 scale, one drawn per sample
    noise: Literal["uint8", "float"] = "uint8"  # uint8: PromptIR truncation; float: NDR-Restore
    # airtool.degrade preset for rain/haze/blur/lowlight; None: all presets; a list: the union of
    # those presets' ranges (haze [light, medium] = RESIDE OTS's beta 0.04-0.2, the SOTS range)
    preset: str | tuple[str, ...] | None = None
    holdout: int = 0  # the last N files (sorted) are kept out of training, for validation


@dataclass(frozen=True)
class DataConfig:
    sources: tuple[SourceConfig, ...]
    root: str = "../shared/data"  # relative to the working directory
    crop: int = 128
    batch_size: int = 8  # per process; the global batch is batch_size × world size
    workers: int = 2
    cache_mb: int = 1024  # decoded images kept in memory per loader process (0 = decode every time)
    # flips-rot: h-flip, v-flip, transpose each p=0.5 (BasicSR, NDR); promptir: one of the 7
    # non-identity flip/rotations (PromptIR, AnyIR); hvflip: h- and v-flip (DaAIR).
    augment: Augment = "flips-rot"


@dataclass(frozen=True)
class ValConfig:
    every: int = 1000  # steps between validations; 0 = never
    crop: int = 128  # centre crop of each held-out image
    limit: int = 8  # at most this many held-out samples


Sample = tuple[Tensor, Tensor, int]  # degraded CHW, clean CHW (float32, [0, 1]), task label


DEFAULT_ROOT = "../shared/data"  # the presets' data.root; $AIRTOOL_DATA replaces it when set
DATA_HINT = ("training data is not shipped (the README's 'Training and benchmark data' says what the presets expect); "
             "point at yours with --set data.root=DIR or AIRTOOL_DATA=DIR")


class DecodedCache:
    """Training images decoded once per loader process and kept in memory, up to ``limit_mb``.

    Decoding a PNG costs more than cropping and degrading it (tools/bench_train.py, mode
    ``loader``), and every image is drawn many times per run. 8-bit images are kept as their
    uint8 levels and turned back into exactly the floats ``read_image`` gives (level / 255 in
    float32); grey images are kept with one channel. Past the limit, images are read each time.
    """

    def __init__(self, limit_mb: int) -> None:
        self.limit = limit_mb * 2**20
        self.used = 0
        self.images: dict[Path, tuple[np.ndarray, float]] = {}
        self.scenes: dict[tuple[Path, str], np.ndarray] = {}

    def scene(self, path: Path, task: str, image: np.ndarray) -> np.ndarray:
        """``scene_map`` of ``task``'s degradation for ``image`` (read from ``path``), HW1 float32,
        kept within the same memory limit: it depends on the image alone and can cost seconds."""
        key = (path, task)
        hit = self.scenes.get(key)
        if hit is None:
            hit = scene_map(task, image)
            if self.used + hit.nbytes <= self.limit:
                self.scenes[key] = hit
                self.used += hit.nbytes
        return hit

    def read(self, path: Path) -> np.ndarray:
        hit = self.images.get(path)
        if hit is None:
            hit = self._decode(path)
            if self.used + hit[0].nbytes <= self.limit:
                self.images[path] = hit
                self.used += hit[0].nbytes
        stored, scale = hit
        pixels = stored if scale == 1.0 else stored.astype(np.float32) / np.float32(scale)
        return as_rgb(pixels)

    @staticmethod
    def _decode(path: Path) -> tuple[np.ndarray, float]:
        from airtool.io.image import read_image

        pic = read_image(path)
        pixels = pic.pixels[..., :3]
        if pic.bit_depth == 8:
            return np.round(pixels * np.float32(255.0)).astype(np.uint8), 255.0
        return np.ascontiguousarray(pixels, dtype=np.float32), 1.0


def _folder_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ConfigError(f"{folder}: data folder not found; {DATA_HINT}")
    return list_images(folder)


def paired_files(folder: Path) -> list[tuple[Path, Path]]:
    """(input, target) pairs of ``folder/input`` and ``folder/target`` with the same stem."""
    targets = {p.stem: p for p in _folder_images(folder / "target")}
    pairs = [(p, targets[p.stem]) for p in _folder_images(folder / "input") if p.stem in targets]
    if not pairs:
        raise ConfigError(f"{folder}: no input/target pairs with matching file stems")
    return pairs


# -- degradations -------------------------------------------------------------------------


def _degrade_op(task: str) -> object:
    if task not in OPS:
        raise ConfigError(f"on-the-fly {task!r} data: no such airtool.degrade op (choose from: {', '.join(NAMES)})")
    return OPS[task]


def has_scene_map(task: str) -> bool:
    """True where the degradation depends on the whole image, not only on the crop (haze: depth)."""
    return hasattr(OPS.get(task), "scene_map")


def scene_map(task: str, image: np.ndarray) -> np.ndarray:
    """The whole-image map (HW1 float32) that ``task``'s op degrades crops with (haze: depth)."""
    op: Any = _degrade_op(task)
    chw = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
    return op.scene_map(chw).numpy().transpose(1, 2, 0).astype(np.float32)


def degrade(
    clean: np.ndarray, src: SourceConfig, rng: np.random.Generator, scene: np.ndarray | None = None
) -> np.ndarray:
    """Degrade one clean HWC crop for ``src.task`` with the ``airtool.degrade`` op.

    Noise follows the papers' training code: σ drawn from ``src.sigmas`` per sample, added after
    the crop and augmentation; ``uint8`` = PromptIR's clip + uint8 truncation, ``float`` =
    NDR-Restore's clipped float noise without quantisation. ``scene``: the crop's window of the
    whole image's ``scene_map`` (HW1), for ops that have one.
    """
    op: Any = _degrade_op(src.task)
    fixed: dict[str, Any] = {}
    if src.task == "noise":
        sigma = float(rng.choice(src.sigmas))
        fixed = {"sigma": sigma}
        fixed.update({"protocol": "promptir"} if src.noise == "uint8" else {"quantize": "none"})
    params = op.sample(rng, preset=src.preset, **fixed)
    chw = torch.from_numpy(np.ascontiguousarray(clean.transpose(2, 0, 1)))
    if scene is not None:
        out = op.apply_scene(chw, params, torch.from_numpy(np.ascontiguousarray(scene.transpose(2, 0, 1))))
    else:
        out = op.apply(chw, params, rng=rng)
    return out.clamp(0, 1).numpy().transpose(1, 2, 0).astype(np.float32)


# -- crops and augmentation ---------------------------------------------------------------


def random_crop(images: list[np.ndarray], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The same random ``size``² window of each image (reflect-padded first when smaller)."""
    h, w = images[0].shape[:2]
    if any(im.shape[:2] != (h, w) for im in images):
        raise ValueError(f"paired images differ in size: {[im.shape for im in images]}")
    if h < size or w < size:
        pad = ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0))
        images = [np.pad(im, pad, mode="reflect") for im in images]
        h, w = images[0].shape[:2]
    top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return [im[top : top + size, left : left + size] for im in images]


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    th, tw = min(size, h), min(size, w)
    top, left = (h - th) // 2, (w - tw) // 2
    return img[top : top + th, left : left + tw]


def _dihedral(img: np.ndarray, mode: int) -> np.ndarray:
    """Mode 0 is the identity; 1-7 are the other flips/rotations of the square."""
    out = np.rot90(img, k=mode % 4, axes=(0, 1))
    return out[:, ::-1] if mode >= 4 else out


def augment_mode(kind: str, rng: np.random.Generator) -> tuple[bool, bool, bool] | int:
    if kind == "promptir":
        return int(rng.integers(1, 8))  # PromptIR's augmentation never returns the identity
    if kind == "flips-rot":
        return tuple(bool(b) for b in rng.random(3) < 0.5)  # type: ignore[return-value]
    if kind == "hvflip":
        h, v = rng.random(2) < 0.5
        return (bool(h), bool(v), False)
    return 0


def apply_augment(img: np.ndarray, mode: tuple[bool, bool, bool] | int) -> np.ndarray:
    if isinstance(mode, int):
        return _dihedral(img, mode)
    hflip, vflip, transpose = mode
    if hflip:
        img = img[:, ::-1]
    if vflip:
        img = img[::-1]
    if transpose:
        img = img.transpose(1, 0, 2)
    return img


def to_tensor(img: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))


# -- sources, the mixture, loaders ------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A resolved source: its config and its (training or held-out) files."""

    cfg: SourceConfig
    files: tuple[tuple[Path, Path | None], ...]  # (input, target) pairs, or (clean, None)

    @property
    def label(self) -> int:
        return task_index(self.cfg.task)

    def load(self, index: int, cache: DecodedCache | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        read = cache.read if cache is not None else read_rgb
        first, second = self.files[index]
        return read(first), (read(second) if second is not None else None)

    def with_scene(self, index: int, images: list[np.ndarray], cache: DecodedCache | None) -> list[np.ndarray]:
        """``images`` plus, for a clean source whose degradation has a whole-image map (haze's
        depth), that map, so that it is cropped and augmented with the image."""
        if self.cfg.paired or not has_scene_map(self.cfg.task):
            return images
        path = self.files[index][0]
        scene = cache.scene(path, self.cfg.task, images[0]) if cache is not None else scene_map(self.cfg.task, images[0])
        return [*images, scene]

    def make(self, images: list[np.ndarray], rng: np.random.Generator) -> Sample:
        """(degraded, clean) from already cropped/augmented images (and the scene map's crop,
        last, where ``with_scene`` added one); clean ones degraded now."""
        if self.cfg.paired:
            degraded, clean = images
        else:
            clean = images[0]
            scene = images[1] if len(images) > 1 else None
            degraded = degrade(np.ascontiguousarray(clean), self.cfg, rng, scene)
        return to_tensor(degraded), to_tensor(clean), self.label


def _resolve(root: str, path: str) -> Path:
    env = os.environ.get("AIRTOOL_DATA")
    base = Path(env) if env and root == DEFAULT_ROOT else Path(root)  # an explicit data.root wins
    folder = Path(path)
    folder = folder if folder.is_absolute() else base / folder
    banned = EVALUATION_SETS.intersection(folder.resolve().parts)
    if banned:
        raise ConfigError(f"{folder}: {sorted(banned)[0]} is an evaluation set; never train on it")
    return folder


def build_sources(cfg: DataConfig) -> tuple[list[Source], list[Source]]:
    """(training sources, held-out sources) with their file lists; bad folders raise ConfigError."""
    if not cfg.sources:
        raise ConfigError("data.sources: at least one source is needed")
    train, held = [], []
    holdouts: dict[Path, int] = {}  # a folder shared by sources must hold out the same files
    for i, src in enumerate(cfg.sources):
        task_index(src.task)
        if src.weight <= 0:
            raise ConfigError(f"data.sources[{i}].weight: must be > 0")
        folder = _resolve(cfg.root, src.path)
        if holdouts.setdefault(folder.resolve(), src.holdout) != src.holdout:
            raise ConfigError(f"data.sources[{i}].holdout: {folder} is used with different holdout counts")
        files: list[tuple[Path, Path | None]] = (
            list(paired_files(folder)) if src.paired else [(p, None) for p in _folder_images(folder)]
        )
        if len(files) <= src.holdout:
            raise ConfigError(f"data.sources[{i}]: {folder} has {len(files)} images, holdout is {src.holdout}")
        cut = len(files) - src.holdout
        train.append(Source(src, tuple(files[:cut])))
        if src.holdout:
            held.append(Source(src, tuple(files[cut:])))
    return train, held


class MixtureDataset(Dataset):
    """Item ``i`` is training sample ``start + i`` of the run, a pure function of (seed, that id)."""

    def __init__(self, sources: list[Source], cfg: DataConfig, seed: int, start: int, length: int) -> None:
        self.sources, self.cfg, self.seed = sources, cfg, seed
        self.start, self.length = start, length
        weights = np.array([s.cfg.weight for s in sources], dtype=np.float64)
        self.probs = weights / weights.sum()
        self.cache = DecodedCache(cfg.cache_mb)  # each DataLoader worker fills its own copy

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> Sample:
        rng = np.random.default_rng([self.seed, self.start + i])
        src = self.sources[int(rng.choice(len(self.sources), p=self.probs))]
        index = int(rng.integers(len(src.files)))
        first, second = src.load(index, self.cache)
        images = src.with_scene(index, [first] if second is None else [first, second], self.cache)
        mode = augment_mode(self.cfg.augment, rng)
        images = [apply_augment(im, mode) for im in random_crop(images, self.cfg.crop, rng)]
        return src.make(images, rng)


def build_train_loader(
    cfg: DataConfig, seed: int, *, start_step: int, steps: int, rank: int = 0, world: int = 1,
    pin_memory: bool = False,
) -> DataLoader:
    """Batches for steps ``start_step+1 … start_step+steps`` of this rank.

    Under DDP, ``DistributedSampler`` (no shuffling: the ids are already random draws) gives rank
    ``r`` the ids ``r, r+W, r+2W, …``, so each step's global batch is the same for any W.
    """
    sources, _ = build_sources(cfg)
    per_step = cfg.batch_size * world
    dataset = MixtureDataset(sources, cfg, seed, start_step * per_step, steps * per_step)
    sampler = None
    if world > 1:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False, drop_last=True)
    return DataLoader(
        dataset, batch_size=cfg.batch_size, sampler=sampler, shuffle=False, drop_last=True,
        num_workers=worker_count(cfg.workers), pin_memory=pin_memory, persistent_workers=False,
    )


def build_val_samples(cfg: DataConfig, val: ValConfig, seed: int) -> list[Sample]:
    """Held-out samples, taken round-robin over the sources (so every task is represented): a
    centre crop of each held-out file, degraded once with a fixed per-sample seed."""
    _, held = build_sources(cfg)
    order = [(s, i) for i in range(max((len(s.files) for s in held), default=0)) for s in held if i < len(s.files)]
    samples: list[Sample] = []
    for k, (src, index) in enumerate(order[: val.limit]):
        rng = np.random.default_rng([seed, 1, k])
        first, second = src.load(index)
        images = src.with_scene(index, [first] if second is None else [first, second], None)
        images = [center_crop(im, val.crop) for im in images]
        samples.append(src.make(images, rng))
    return samples


def worker_count(requested: int) -> int:
    """Never more DataLoader workers than CPUs available to this process."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(requested, available))


def describe(cfg: DataConfig) -> list[dict[str, object]]:
    """What the manifest records about the data: folder, task, weight, paired or synthetic."""
    def kind(s: SourceConfig) -> str:
        if s.paired:
            return "paired"
        return f"clean+noise sigma={list(s.sigmas)} {s.noise}" if s.task == "noise" else f"clean+{s.task}"

    return [{"path": str(Path(cfg.root) / s.path), "task": s.task, "weight": s.weight, "kind": kind(s)}
            for s in cfg.sources]

