"""Safe, strict weight loading and saving.

Formats: safetensors (preferred; our shipped weights carry their model config in the file's
metadata) and PyTorch pickles read with ``torch.load(weights_only=True)`` only, so a file that
would run code when unpickled is refused. Loading is strict: missing or unexpected keys and
shape mismatches are reported by name in one line.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from airtool.errors import WeightsError
from airtool.io.atomic import atomic_path
from airtool.models import get_spec
from airtool.models.spec import ModelSpec
from airtool.models.weights_info import MANIFEST_NAME, sha256_of, weights_dir
from airtool.precision import dtype_of

# Wrappers used by BasicSR (params / params_ema), Lightning (state_dict) and others.
_WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model_state_dict", "model", "net")


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return {"files": {}}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise WeightsError(f"{path}: unreadable weights manifest ({err})") from None


def read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Return (state_dict, metadata) from a safetensors or weights-only pickle file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle payloads, truncated files, wrong formats
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(f"{path}: refused or unreadable as a weights-only checkpoint ({first[:200]})") from None
    return _unwrap(obj, path), {}


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            return {k: fh.get_tensor(k) for k in fh.keys()}, meta
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"{path}: not a valid safetensors file ({err})") from None


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):
        if isinstance(obj, dict) and not _is_state_dict(obj):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not (isinstance(obj, dict) and _is_state_dict(obj)):
        raise WeightsError(f"{path}: no state dict found (expected tensors, or one of {', '.join(_WRAPPER_KEYS)})")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _is_state_dict(obj: dict) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def load_state_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module``; any missing/unexpected key or shape mismatch is one error line."""
    load_state_check(module.state_dict(), state, source)
    module.load_state_dict(state, strict=True)


def load_state_check(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], source: str) -> None:
    """Any missing/unexpected key or shape mismatch of ``state`` against ``own`` is one error line."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k} {tuple(state[k].shape)}!={tuple(v.shape)}" for k, v in own.items() if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"missing keys: {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_few(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes: {_few(wrong)}")
    if problems:
        raise WeightsError(f"{source}: weights do not match the model ({'; '.join(problems)})")


def _few(items: list[str], n: int = 4) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def verify_against_manifest(path: Path) -> None:
    """If ``path``'s folder has a manifest listing it, its sha256 must match."""
    entry = read_manifest(path.parent).get("files", {}).get(path.name)
    if entry and entry.get("sha256") and sha256_of(path) != entry["sha256"]:
        raise WeightsError(f"{path}: sha256 does not match {path.parent / MANIFEST_NAME}; the file is damaged or replaced")


def resolve_weights(spec: ModelSpec, weights: str | Path | None) -> Path | None:
    """Pick the weights file for a model, or explain how to get one."""
    if weights is not None:
        return Path(weights)
    if not spec.needs_weights:
        return None
    folder = weights_dir()
    name = spec.default_weights or next(iter(spec.weights.values()), None)
    if name and (folder / name).is_file():
        return folder / name
    shipped = [m for m in _models_with_weights(folder) if m != spec.name]
    hint = f"; shipped weights exist for: {', '.join(shipped)} (--model NAME)" if shipped else ""
    raise WeightsError(
        f"no trained weights for model {spec.name!r} in {folder}; pass --weights FILE, or train some "
        f"(airtool train --config {spec.family or spec.name}-aio3, then airtool train export){hint}"
    )


def _models_with_weights(folder: Path) -> list[str]:
    from airtool.models import list_specs

    return [s.name for s in list_specs() if any((folder / f).is_file() for f in s.weights.values())]


def variant_from_metadata(spec: ModelSpec, meta: dict[str, str], variant: str | None) -> str:
    stored = meta.get("airtool_variant")
    model = meta.get("airtool_model")
    if model and model not in (spec.name, spec.family):
        raise WeightsError(f"weights were trained for model {model!r}, not {spec.name!r}")
    if variant and stored and variant != stored:
        raise WeightsError(f"weights are for variant {stored!r}, not {variant!r}")
    return variant or stored or spec.default_variant


def load_model(
    name: str, weights: str | Path | None = None, variant: str | None = None, clip: str | Path | None = None,
    *, random_seed: int | None = None,
) -> tuple[nn.Module, ModelSpec]:
    """Build a registered model and load its weights safely and strictly; returns it in eval mode.

    Models with ``spec.needs_clip`` also get their frozen CLIP encoder from ``clip`` (or
    ``$AIRTOOL_CLIP``); without one they fail here, before any weights or images are read.
    ``random_seed`` builds the model with random weights from that seed instead (benchmarks:
    speed does not depend on the weights); ``weights`` must then be None.
    """
    spec = get_spec(name)
    clip_path = _clip_path(spec, clip)
    if random_seed is not None and weights is not None:
        raise ValueError("load_model: give weights or random_seed, not both")
    path = None if random_seed is not None else resolve_weights(spec, weights)
    foreign: dict[str, torch.Tensor] = {}
    if path is None:
        if random_seed is not None:
            torch.manual_seed(random_seed)
        module = spec.create(variant)
    else:
        verify_against_manifest(path)
        state, meta = read_state_dict(path)
        module = build_for_weights(spec, variant_from_metadata(spec, meta, variant))
        state, foreign = _split(module, state)
        load_state_strict(module.inference_modules(), state, str(path))
    if clip_path is not None:
        from airtool.models.clip_encoder import load_clip_encoder

        module.attach_clip(load_clip_encoder(clip_path), saved=foreign)
    return module.eval(), spec


def _clip_path(spec: ModelSpec, clip: str | Path | None) -> Path | None:
    if not spec.needs_clip:
        return None
    from airtool.models.clip_encoder import resolve_clip_path

    return resolve_clip_path(clip, spec.name)


def _split(module: nn.Module, state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    split = getattr(module, "split_state_dict", None)
    return split(state) if split is not None else (state, {})


def build_for_weights(spec: ModelSpec, variant: str) -> nn.Module:
    """The model without the random initialisation of its layers, which the strict load that
    follows overwrites anyway (every parameter and buffer must be in the file): initialising
    a paper-size network costs more than reading its weights (docs/performance.md#start-up-and-io).
    Parts outside ``inference_modules()`` (training-only helpers, not in the weights) are
    initialised as always."""
    rng = torch.random.get_rng_state()
    with _layers_not_initialised():
        module = spec.create(variant)
    if module.inference_modules() is not module:  # NDR-Restore's NDR-Degrad: built as it always was
        torch.random.set_rng_state(rng)
        module = spec.create(variant)
    return module


@contextlib.contextmanager
def _layers_not_initialised() -> Iterator[None]:
    """``torch.nn.init``'s in-place fills as no-ops while the model is built (main thread only:
    restore and evaluate build before their worker threads start)."""
    names = [n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_") and callable(getattr(nn.init, n))]
    saved = {n: getattr(nn.init, n) for n in names}
    try:
        for n in names:
            setattr(nn.init, n, _unchanged)
        yield
    finally:
        for n, fn in saved.items():
            setattr(nn.init, n, fn)


def _unchanged(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return tensor


def save_weights(
    module: nn.Module,
    path: Path,
    *,
    model: str,
    variant: str,
    config: dict,
    metadata: dict[str, str] | None = None,
    dtype: str = "fp32",
) -> str:
    """Write ``module``'s state dict as safetensors (atomically) with its config; returns sha256.

    ``dtype`` ("fp32", "bf16", "fp16") is the storage type of floating-point tensors; loading
    casts them back to the model's dtype. Integer buffers (e.g. BatchNorm counters) are kept.
    """
    from safetensors.torch import save_file

    store = dtype_of(dtype)
    meta = {"airtool_model": model, "airtool_variant": variant, "airtool_config": json.dumps(config, sort_keys=True),
            "airtool_dtype": dtype}
    meta.update(metadata or {})
    state = {
        k: (v.detach().to(store) if v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in module.state_dict().items()
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return sha256_of(path)


def update_manifest(folder: Path, file_name: str, entry: dict[str, Any]) -> None:
    """Add or replace one file's entry in ``folder/manifest.json`` (atomic write)."""
    manifest = read_manifest(folder)
    manifest.setdefault("files", {})[file_name] = entry
    with atomic_path(folder / MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
