"""OpenAI's own CLIP checkpoints (``ViT-L-14.pt`` from the openai/CLIP package), read without running them.

That file is a TorchScript archive: a zip whose ``data.pkl`` pickles the module tree and whose
``code/`` folder holds TorchScript source. ``torch.jit.load`` would compile and run that code, and
``torch.load(weights_only=True)`` refuses TorchScript archives, so neither is used. Instead the
pickle is read with an unpickler that allows only what a tree of tensors needs (tensor and storage
rebuilders, ``OrderedDict``, TorchScript's list/type-tag helpers) and turns every ``__torch__.*``
class into an inert attribute holder; any other global is refused by name, and ``code/`` is never
opened. A plain ``torch.save`` state dict of the same model is read with ``weights_only=True``.

The vision tower's tensors are then renamed to transformers' ``CLIPVisionModel`` layout (the
fused ``in_proj`` split into q, k, v, as transformers' own conversion script does), with the
config read off the shapes: width, patch, layers and grid; heads = width / 64 and QuickGELU, as in
every OpenAI CLIP ViT. Preprocessing is OpenAI's: 224 bicubic resize, centre crop, their mean/std.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from airtool.errors import WeightsError

# Legacy storage class names in the pickle -> the dtype of their bytes.
_STORAGES = {"FloatStorage": torch.float32, "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
             "DoubleStorage": torch.float64, "LongStorage": torch.int64, "IntStorage": torch.int32,
             "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool}
HEAD_WIDTH = 64  # OpenAI's VisionTransformer: heads = width // 64


class _ScriptObject:
    """Stands in for a pickled ``__torch__.*`` module: keeps its attributes, runs nothing."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _rebuild_tensor(storage: tuple[torch.UntypedStorage, torch.dtype], offset: int, size: tuple, stride: tuple,
                    *rest: Any) -> Tensor:
    """What ``torch._utils._rebuild_tensor_v2`` does, from our (untyped storage, dtype) pair."""
    untyped, dtype = storage
    return torch.empty(0, dtype=dtype).set_(untyped, offset, size, stride)


def _rebuild_parameter(data: Tensor, requires_grad: bool, backward_hooks: Any, *rest: Any) -> Tensor:
    return data


def _identity(value: Any, *rest: Any) -> Any:
    return value


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch.jit._pickle", "restore_type_tag"): _identity,
    **{("torch.jit._pickle", f"build_{kind}list"): list for kind in ("int", "double", "bool", "tensor")},
}


class _ArchiveUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptObject
        if module == "torch" and name in _STORAGES:
            return _STORAGES[name]  # stands for the class: persistent_load only needs its dtype
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refused global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.60}")
        _, dtype, key, _location, _numel = pid
        raw = bytearray(self.archive.read(f"{self.prefix}/data/{key}"))
        untyped = torch.frombuffer(raw, dtype=torch.uint8).untyped_storage() if raw else torch.UntypedStorage(0)
        return untyped, dtype


def read_openai_state(path: Path) -> dict[str, Tensor]:
    """Every tensor of an OpenAI CLIP ``.pt`` (TorchScript archive or plain state dict), by dotted name."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        raise WeightsError(f"{path}: not a CLIP checkpoint archive ({err})") from None
    with archive:
        names = archive.namelist()
        pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if not pickles:
            raise WeightsError(f"{path}: not a PyTorch archive (no data.pkl)")
        prefix = pickles[0].split("/")[0]
        if not any(n.startswith(f"{prefix}/code/") for n in names):
            return _plain_state_dict(path)
        try:
            root = _ArchiveUnpickler(archive.read(pickles[0]), archive, prefix).load()
        except (pickle.UnpicklingError, KeyError, ValueError, EOFError, AttributeError, TypeError) as err:
            raise WeightsError(f"{path}: refused or unreadable TorchScript archive ({str(err)[:160]})") from None
    state = dict(_named_tensors(root))
    if not state:
        raise WeightsError(f"{path}: no tensors found in the TorchScript archive")
    return state


def _plain_state_dict(path: Path) -> dict[str, Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsError(f"{path}: refused or unreadable as a weights-only checkpoint ({str(err)[:160]})") from None
    if not (isinstance(obj, dict) and all(isinstance(v, Tensor) for v in obj.values())):
        raise WeightsError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _named_tensors(obj: Any, prefix: str = "", seen: set[int] | None = None):
    seen = set() if seen is None else seen
    state = getattr(obj, "state", None)
    if id(obj) in seen or not isinstance(state, dict):
        return
    seen.add(id(obj))
    for name, value in state.items():
        if isinstance(value, Tensor):
            yield f"{prefix}{name}", value
        elif isinstance(value, _ScriptObject):
            yield from _named_tensors(value, f"{prefix}{name}.", seen)


# -- OpenAI names -> transformers' CLIPVisionModel ---------------------------------------------


def vision_config(state: dict[str, Tensor], path: Path) -> dict[str, Any]:
    """transformers ``CLIPVisionConfig`` arguments read off the tensor shapes."""
    try:
        conv = state["visual.conv1.weight"]
        positions = state["visual.positional_embedding"].shape[0]
        fc = state["visual.transformer.resblocks.0.mlp.c_fc.weight"]
    except KeyError as err:
        raise WeightsError(f"{path}: not an OpenAI CLIP ViT checkpoint (no {err.args[0]})") from None
    width, patch = conv.shape[0], conv.shape[-1]
    grid = round((positions - 1) ** 0.5)
    layers = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("visual.transformer.resblocks."))
    return {"hidden_size": width, "intermediate_size": fc.shape[0], "num_hidden_layers": layers,
            "num_attention_heads": width // HEAD_WIDTH, "image_size": grid * patch, "patch_size": patch,
            "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}


def hf_vision_state(state: dict[str, Tensor], layers: int) -> dict[str, Tensor]:
    """The vision tower's tensors under transformers' CLIPVisionTransformer names, in float32."""
    v = "visual."
    out = {
        "embeddings.class_embedding": state[v + "class_embedding"],
        "embeddings.patch_embedding.weight": state[v + "conv1.weight"],
        "embeddings.position_embedding.weight": state[v + "positional_embedding"],
    }
    for ours, theirs in (("pre_layrnorm", "ln_pre"), ("post_layernorm", "ln_post")):
        out[f"{ours}.weight"], out[f"{ours}.bias"] = state[f"{v}{theirs}.weight"], state[f"{v}{theirs}.bias"]
    for i in range(layers):
        src, dst = f"{v}transformer.resblocks.{i}.", f"encoder.layers.{i}."
        for kind, chunks in (("weight", state[src + "attn.in_proj_weight"].chunk(3)),
                             ("bias", state[src + "attn.in_proj_bias"].chunk(3))):
            for proj, tensor in zip(("q_proj", "k_proj", "v_proj"), chunks, strict=True):
                out[f"{dst}self_attn.{proj}.{kind}"] = tensor
        pairs = (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"),
                 ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj"))
        for ours, theirs in pairs:
            for kind in ("weight", "bias"):
                out[f"{dst}{ours}.{kind}"] = state[f"{src}{theirs}.{kind}"]
    return {k: t.float().contiguous() for k, t in out.items()}


def load_openai_vision(path: Path, transformers: Any) -> torch.nn.Module:
    """transformers' CLIPVisionModel holding the vision tower of OpenAI's ``.pt`` (strict)."""
    state = read_openai_state(path)
    config = vision_config(state, path)
    try:
        tensors = hf_vision_state(state, config["num_hidden_layers"])
    except KeyError as err:
        raise WeightsError(f"{path}: incomplete OpenAI CLIP vision tower (no {err.args[0]})") from None
    with torch.device("meta"):  # no random init of ~300M parameters that are overwritten at once
        vision = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**config))
    target = getattr(vision, "vision_model", vision)  # transformers 4 wraps the tower, 5 does not
    try:
        target.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as err:
        raise WeightsError(f"{path}: OpenAI CLIP tensors do not fit ({str(err).splitlines()[0][:160]})") from None
    embeddings = target.embeddings
    embeddings.register_buffer("position_ids", torch.arange(embeddings.num_positions).expand((1, -1)), persistent=False)
    left = [name for name, t in [*vision.named_parameters(), *vision.named_buffers()] if t.is_meta]
    if left:
        raise WeightsError(f"{path}: could not fill {', '.join(left[:3])} from the OpenAI checkpoint")
    return vision.eval()
