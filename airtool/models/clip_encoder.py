"""The frozen CLIP image encoder that SE-SymUNet reads semantics from, loaded from a local path.

Nothing is downloaded: the encoder comes from a folder the user already has, named by
``--clip PATH``, ``$AIRTOOL_CLIP`` or the YAML config. Supported layouts:

- a Hugging Face CLIP folder: ``config.json`` (a full ``CLIPModel`` or a ``CLIPVisionModel``)
  plus ``model.safetensors``, a sharded ``*.safetensors.index.json`` or ``pytorch_model.bin``;
- a Hugging Face hub cache entry (``models--openai--clip-vit-large-patch14``): its ``refs/main``
  snapshot is used;
- a weights file inside such a folder (its folder is used);
- OpenAI's own ``ViT-L-14.pt`` (the openai/CLIP package's TorchScript archive), read without
  running any of its code (``airtool.models.openai_clip``).

The architecture is transformers' ``CLIPVisionModel`` (the optional ``airtool[semantic]`` extra,
imported only here and only when an encoder is loaded). Weights are read by transformers with
``weights_only=True`` and ``local_files_only=True``; the load is strict: a missing or mis-shaped
vision key is an error, and the only keys allowed to be left over are the text tower's.

Preprocessing is the authors' ``_get_clip_features`` (SymUNet_arch.py): the *degraded input*,
shortest side bicubic-resized with antialiasing to ``shortest_edge`` (the long side truncated to
an int), centre-cropped to ``crop``, CLIP mean/std normalisation; ``last_hidden_state`` (all
tokens, CLS included, before the post-LayerNorm) is the semantic sequence. (torchvision's
``resize`` on float tensors is the ``F.interpolate`` call used here, so torchvision is not needed.)
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from airtool.errors import AirtoolError, UsageError, WeightsError

CLIP_ENV = "AIRTOOL_CLIP"
INSTALL_HINT = "pip install 'airtool[semantic]'"
# CLIPImageProcessor's defaults (OpenAI's values), used when a folder has no preprocessor_config.json.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_CLIP_TYPES = ("clip", "clip_vision_model")
# Keys of a full CLIPModel checkpoint that the vision tower does not use.
_TEXT_TOWER = ("text_model.", "text_projection.", "visual_projection.", "logit_scale")


@dataclass(frozen=True)
class ClipPreprocess:
    """How an image becomes CLIP's ``pixel_values`` (the folder's preprocessor_config.json)."""

    shortest_edge: int = 224
    crop: int = 224
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD

    def __call__(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 3, crop, crop) normalised, as the authors' code does it."""
        h, w = images.shape[-2:]
        edge = self.shortest_edge
        size = (edge, int(w * (edge / h))) if h < w else (int(h * (edge / w)), edge)
        x = F.interpolate(images.float(), size=size, mode="bicubic", align_corners=False, antialias=True)
        top, left = round((size[0] - self.crop) / 2.0), round((size[1] - self.crop) / 2.0)  # torchvision's centre
        x = x[..., top : top + self.crop, left : left + self.crop]
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


class ClipImageEncoder(nn.Module):
    """A frozen CLIP vision tower: images in [0, 1] -> (B, tokens, hidden) semantic tokens.

    Always in eval mode with ``requires_grad=False``; it is never trained.
    """

    def __init__(self, vision: nn.Module, preprocess: ClipPreprocess, source: str = "") -> None:
        super().__init__()
        self.vision = vision
        self.preprocess = preprocess
        self.source = source
        self.requires_grad_(False)
        self.eval()

    @property
    def hidden_size(self) -> int:
        return int(self.vision.config.hidden_size)

    def train(self, mode: bool = True) -> ClipImageEncoder:
        return super().train(False)  # frozen: no dropout, whatever the caller's mode

    def forward(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            pixels = self.preprocess(images).to(self._dtype())
            return self.vision(pixel_values=pixels).last_hidden_state.float()

    def _dtype(self) -> torch.dtype:
        return next(self.vision.parameters()).dtype

    def describe(self) -> str:
        cfg = self.vision.config
        return (f"CLIP vision {cfg.num_hidden_layers}x{cfg.hidden_size}, patch {cfg.patch_size}, "
                f"{self.preprocess.crop}px ({self.source or 'built in memory'})")


# -- where the encoder comes from -----------------------------------------------------------


def resolve_clip_path(explicit: str | os.PathLike | None, model: str, how: str = "pass --clip PATH") -> Path:
    """``explicit``, else ``$AIRTOOL_CLIP``; neither is a one-line usage error saying what to pass."""
    value = explicit or os.environ.get(CLIP_ENV)
    if not value:
        raise UsageError(
            f"model {model!r} needs a local CLIP ViT-L/14 image encoder: {how} (a Hugging Face folder "
            f"such as clip-vit-large-patch14 with config.json and model.safetensors), or set {CLIP_ENV}"
        )
    return Path(value).expanduser()


def clip_folder(path: Path) -> Path:
    """The folder holding ``config.json``: ``path`` itself, its parent, or a hub cache snapshot."""
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise WeightsError(f"{path}: CLIP encoder not found (expected a folder with config.json)")
    if (path / "config.json").is_file():
        return path
    snapshots = path / "snapshots"
    if snapshots.is_dir():  # a hub cache entry: models--<org>--<name>/{refs,snapshots}
        ref = path / "refs" / "main"
        chosen = snapshots / ref.read_text().strip() if ref.is_file() else None
        found = [p for p in sorted(snapshots.iterdir()) if (p / "config.json").is_file()]
        if chosen is not None and (chosen / "config.json").is_file():
            return chosen
        if len(found) == 1:
            return found[0]
    raise WeightsError(f"{path}: no config.json here; point --clip at a Hugging Face CLIP folder")


def load_clip_encoder(path: str | os.PathLike) -> ClipImageEncoder:
    """Load a CLIP vision tower from a local folder or OpenAI ``.pt``, safely and strictly (see above)."""
    if Path(path).is_file() and Path(path).suffix == ".pt":
        return _load_openai(Path(path))
    folder = clip_folder(Path(path))
    model_type = _read_json(folder / "config.json").get("model_type")
    if model_type not in _CLIP_TYPES:
        raise WeightsError(f"{folder}: config.json describes a {model_type!r} model, not CLIP ({', '.join(_CLIP_TYPES)})")
    transformers = import_transformers()
    try:
        with quiet_transformers(transformers):
            vision, info = transformers.CLIPVisionModel.from_pretrained(
                str(folder), local_files_only=True, weights_only=True, output_loading_info=True,
                ignore_mismatched_sizes=True,  # reported by name below instead of a pointer to a hidden log
            )
    except Exception as err:  # OSError (no weights), UnpicklingError (unsafe .bin), SafetensorError...
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise WeightsError(f"{folder}: cannot load the CLIP vision weights ({first})") from None
    _check_loading_info(folder, info)
    preprocess = read_preprocess(folder, int(vision.config.image_size))
    return ClipImageEncoder(vision.float(), preprocess, str(folder))


def _load_openai(path: Path) -> ClipImageEncoder:
    from airtool.models.openai_clip import load_openai_vision

    vision = load_openai_vision(path, import_transformers())
    size = int(vision.config.image_size)
    return ClipImageEncoder(vision.float(), ClipPreprocess(shortest_edge=size, crop=size), str(path))


def clip_encoder_from_config(config: Mapping[str, Any], preprocess: ClipPreprocess | None = None) -> ClipImageEncoder:
    """A randomly initialised encoder of the given vision config (tests; a meta-device shape check)."""
    transformers = import_transformers()
    vision = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**config))
    size = int(vision.config.image_size)
    return ClipImageEncoder(vision, preprocess or ClipPreprocess(shortest_edge=size, crop=size))


def _check_loading_info(folder: Path, info: Mapping[str, Any]) -> None:
    missing = sorted(str(k) for k in info.get("missing_keys", ()))
    wrong = sorted(_mismatch(item) for item in info.get("mismatched_keys", ()))
    extra = sorted(str(k) for k in info.get("unexpected_keys", ()) if not str(k).startswith(_TEXT_TOWER))
    problems = [f"{what}: {_few(keys)}" for what, keys in
                (("missing keys", missing), ("wrong shapes", wrong), ("unexpected keys", extra)) if keys]
    if problems:
        raise WeightsError(f"{folder}: CLIP weights do not match its config.json ({'; '.join(problems)})")


def _mismatch(item: Any) -> str:
    """transformers reports (key, file shape, model shape)."""
    if isinstance(item, tuple) and len(item) == 3:
        key, found, expected = item
        return f"{key} {tuple(found)}!={tuple(expected)}"
    return str(item)


def read_preprocess(folder: Path, image_size: int) -> ClipPreprocess:
    """``preprocessor_config.json`` (legacy ints or {shortest_edge} / {height, width} dicts)."""
    path = folder / "preprocessor_config.json"
    data = _read_json(path) if path.is_file() else {}
    size, crop = data.get("size", image_size), data.get("crop_size", image_size)
    edge = size.get("shortest_edge", image_size) if isinstance(size, Mapping) else size
    crop = crop.get("height", image_size) if isinstance(crop, Mapping) else crop
    mean, std = tuple(data.get("image_mean", OPENAI_MEAN)), tuple(data.get("image_std", OPENAI_STD))
    if not (isinstance(edge, int) and isinstance(crop, int) and 0 < crop <= edge and len(mean) == len(std) == 3):
        raise WeightsError(f"{path}: unsupported CLIP preprocessing (size {size!r}, crop_size {crop!r})")
    return ClipPreprocess(edge, crop, mean, std)  # type: ignore[arg-type]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise WeightsError(f"{path}: unreadable ({err})") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: expected a JSON object")
    return data


def _few(items: list[str], n: int = 4) -> str:
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


# -- the optional dependency ----------------------------------------------------------------


def import_transformers() -> Any:
    """transformers, or a one-line error naming the extra to install."""
    try:
        import transformers
    except ImportError:
        raise AirtoolError(f"the CLIP encoder needs transformers, which is not installed: {INSTALL_HINT}") from None
    return transformers


@contextlib.contextmanager
def quiet_transformers(transformers: Any) -> Iterator[None]:
    """No progress bars or load reports on the terminal while loading (restored afterwards)."""
    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
