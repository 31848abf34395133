"""Spec parsing and composition of degradation ops (what ``airtool degrade`` calls).

Spec grammar (one string per op, as typed after ``--noise``, ``--rain``, ...)::

    SPEC  := ITEM ("," ITEM)*
    ITEM  := PRESET | KEY "=" VALUE | BOOLKEY | NUMBER (noise: sigma, jpeg: quality)
    blur  := [KIND [":" SPEC]] | SPEC           KIND = shake | motion | defocus | gauss
    PRESET = light | medium | heavy

Examples: ``--noise 25`` (sigma on 0-255), ``--noise 15,gray``, ``--jpeg 20`` (quality),
``--rain heavy``, ``--rain light,angle=10``, ``--haze beta=1.0,A=0.9,depth=linear``,
``--blur motion:length=15,angle=30``, ``--blur shake``, ``--blur defocus:radius=4``,
``--blur gauss:sigma=2``, ``--lowlight ev=-4``. Keys not given are drawn from the preset's
ranges (no preset: the union of all presets). Keys match case-insensitively (``a=0.9`` is
``A``); a depth-map path cannot contain commas. Bad specs raise ``UsageError``.

Typical batch use (results depend only on the seed and the file's relative path)::

    chain = Chain.parse([("haze", "medium"), ("noise", "25")])
    rng = file_rng(seed, "sub/img.png")
    params = chain.sample(rng)
    out = chain.apply(img, params)          # per-pixel noise from the seeds in params
    sidecar = chain.describe(params, seed=seed, relpath="sub/img.png")

Videos: the clip's parameters are drawn once, as for an image (``file_rng``). Each frame then
gets fresh per-pixel randomness: the ``seed`` of the ops in ``FRESH_EACH_FRAME`` (noise, rain
streaks, low-light sensor noise) is redrawn from ``frame_rng(seed, relpath, index)``, while the
haze, the rain's direction, density and length, the blur kernel, the exposure and the JPEG quality
stay those of the clip. ``per_frame=True`` draws every parameter again for each frame from the
same ``frame_rng``. ``Chain.frame_params`` gives any frame's exact parameters back.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor

from airtool.degrade.base import PRESETS, draw_seed
from airtool.degrade.registry import OPS, unknown_op
from airtool.errors import UsageError

# Physical order used when the caller asks for the canonical one: scene (haze, rain), optics
# (blur), sensor (low light, noise), then compression.
CANONICAL_ORDER: tuple[str, ...] = ("haze", "rain", "blur", "lowlight", "noise", "jpeg")
# Ops whose ``seed`` drives per-pixel randomness, redrawn for every frame of a video. (The blur's
# ``seed`` is the camera-shake trajectory, which makes its kernel: it stays fixed for the clip.)
FRESH_EACH_FRAME: tuple[str, ...] = ("noise", "rain", "lowlight")
# What a bare number as first item means.
BARE_NUMBER_KEY: dict[str, str] = {"noise": "sigma", "jpeg": "quality"}


@dataclass(frozen=True)
class OpSpec:
    """One parsed op: name, the text it came from, preset word (or None), fixed keys."""

    op: str
    text: str
    preset: str | None = None
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw this op's Params."""
        return OPS[self.op].sample(rng, self.preset, **self.fixed)


def parse_spec(op: str, text: str | int | float) -> OpSpec:
    """Parse one op's spec string; raise ``UsageError`` with a clear message if it is bad."""
    name = op.strip().lower().lstrip("-")
    if name not in OPS:
        raise unknown_op(op)
    raw = str(text).strip()
    if not raw:
        raise UsageError(f"--{name}: empty spec (give a preset such as 'medium' or key=value pairs)")
    items = [t.strip() for t in raw.split(",")]
    if any(not t for t in items):
        raise UsageError(f"--{name} {raw!r}: empty item (stray comma?)")
    preset, fixed = _parse_items(name, raw, items)
    spec = OpSpec(name, raw, preset, fixed)
    try:
        spec.sample(np.random.default_rng(0))  # validates combinations (kind keys, files, near/far)
    except ValueError as exc:
        raise UsageError(f"--{name} {raw!r}: {exc}") from None
    return spec


def _parse_items(op: str, raw: str, items: list[str]) -> tuple[str | None, dict[str, Any]]:
    keys = OPS[op].KEYS
    fixed: dict[str, Any] = {}
    preset: str | None = None
    if op == "blur":
        items = _split_blur_kind(raw, items, fixed)
    for item in items:
        if "=" in item:
            key, _, value = item.partition("=")
            key = _canonical_key(op, key.strip())
            if key in fixed:
                raise UsageError(f"--{op} {raw!r}: {key} is given twice")
            fixed[key] = value.strip()
        elif item.lower() in PRESETS:
            if preset is not None:
                raise UsageError(f"--{op} {raw!r}: two presets ({preset}, {item.lower()})")
            preset = item.lower()
        elif op in BARE_NUMBER_KEY and BARE_NUMBER_KEY[op] not in fixed and _is_number(item):
            fixed[BARE_NUMBER_KEY[op]] = item
        elif _canonical_key(op, item, strict=False) in keys and keys[_canonical_key(op, item)].kind == "bool":
            fixed[_canonical_key(op, item)] = True
        else:
            bare = f", a number ({BARE_NUMBER_KEY[op]})" if op in BARE_NUMBER_KEY else ""
            raise UsageError(
                f"--{op} {raw!r}: {item!r} is not a preset (light, medium, heavy){bare} or key=value"
            )
    converted = {k: keys[k].convert(op, k, v) for k, v in fixed.items()}
    return preset, converted


def _split_blur_kind(raw: str, items: list[str], fixed: dict[str, Any]) -> list[str]:
    """Take a leading ``KIND`` or ``KIND:...`` off the blur items."""
    kinds = OPS["blur"].KINDS
    head, sep, rest = items[0].partition(":")
    if head.strip().lower() in kinds:
        fixed["kind"] = head.strip().lower()
        return ([rest.strip()] if rest.strip() else []) + items[1:]
    if sep and "=" not in head:
        raise UsageError(f"--blur {raw!r}: unknown blur kind {head!r} (choose from: {', '.join(kinds)})")
    return items


def _canonical_key(op: str, key: str, strict: bool = True) -> str:
    """Match ``key`` case-insensitively against the op's keys (``a`` -> ``A``)."""
    keys = OPS[op].KEYS
    for k in keys:
        if k.lower() == key.lower():
            return k
    if not strict:
        return key
    close = difflib.get_close_matches(key, list(keys), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UsageError(f"--{op}: unknown key {key!r} (valid keys: {', '.join(keys)}){hint}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def file_rng(seed: int, relpath: str) -> np.random.Generator:
    """Per-file generator that depends only on ``seed`` and the relative path string.

    ``relpath`` should be POSIX-style (``sub/img.png``), relative to the input root, so results
    do not depend on where the tree lives or on processing order.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {seed!r}")
    digest = hashlib.sha256(relpath.encode("utf-8")).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


def frame_rng(seed: int, relpath: str, index: int) -> np.random.Generator:
    """Generator for frame ``index`` (0-based) of the video at ``relpath``; independent of
    ``file_rng(seed, relpath)``, which draws the clip's parameters."""
    if index < 0:
        raise ValueError("frame index must be >= 0")
    file_rng(seed, relpath)  # validates the seed
    digest = hashlib.sha256(relpath.encode("utf-8")).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little"), index + 1])


class Chain:
    """Several ops applied in order. Stateless apart from the parsed specs."""

    def __init__(self, specs: Sequence[OpSpec]) -> None:
        if not specs:
            raise UsageError("no degradation given (use e.g. --noise 25 or --rain medium)")
        self.specs: tuple[OpSpec, ...] = tuple(specs)

    @classmethod
    def parse(
        cls, specs: Mapping[str, Any] | Sequence[tuple[str, Any]], order: Sequence[str] | None = None
    ) -> Chain:
        """Chain from ``{op: spec}`` or ``[(op, spec), ...]``, in the given order.

        ``order`` (e.g. ``CANONICAL_ORDER``) re-sorts the ops; ops missing from it are an error.
        """
        pairs = list(specs.items()) if isinstance(specs, Mapping) else list(specs)
        parsed = [parse_spec(op, text) for op, text in pairs]
        if order is not None:
            rank = {name: i for i, name in enumerate(order)}
            missing = [s.op for s in parsed if s.op not in rank]
            if missing:
                raise UsageError(f"order {','.join(order)} does not mention: {', '.join(missing)}")
            parsed.sort(key=lambda s: rank[s.op])
        return cls(parsed)

    @property
    def ops(self) -> tuple[str, ...]:
        """Op names in application order."""
        return tuple(s.op for s in self.specs)

    def sample(self, rng: np.random.Generator) -> list[Any]:
        """One Params per op, drawn in order from ``rng``."""
        return [spec.sample(rng) for spec in self.specs]

    def apply(self, img: Tensor, params_list: Sequence[Any], rng: np.random.Generator | None = None) -> Tensor:
        """Apply every op in order. Same shape/dtype as ``img``, in [0, 1].

        Without ``rng`` each op's per-pixel randomness comes from the seed in its Params, so
        the sidecar from :meth:`describe` reproduces the output exactly.
        """
        if len(params_list) != len(self.specs):
            raise ValueError(f"{len(self.specs)} ops but {len(params_list)} params")
        out = img
        for spec, params in zip(self.specs, params_list, strict=True):
            if not isinstance(params, OPS[spec.op].Params):
                raise TypeError(f"params for {spec.op} are {type(params).__name__}")
            out = OPS[spec.op].apply(out, params, rng)
        return out

    def run(self, img: Tensor, seed: int, relpath: str) -> tuple[Tensor, dict[str, Any]]:
        """Degrade one file's image: per-file rng, sample, apply; returns (image, sidecar dict)."""
        params = self.sample(file_rng(seed, relpath))
        return self.apply(img, params), self.describe(params, seed=seed, relpath=relpath)

    def frame_params(
        self, clip: Sequence[Any], seed: int, relpath: str, index: int, per_frame: bool = False
    ) -> list[Any]:
        """The params of frame ``index`` of a video whose clip params are ``clip``."""
        rng = frame_rng(seed, relpath, index)
        if per_frame:
            return self.sample(rng)
        out = []
        for spec, params in zip(self.specs, clip, strict=True):
            fresh = spec.op in FRESH_EACH_FRAME and "seed" not in spec.fixed
            out.append(dataclasses.replace(params, seed=draw_seed(rng)) if fresh else params)
        return out

    def describe_video(
        self, clip: Sequence[Any], seed: int, relpath: str, frames: int, per_frame: bool = False
    ) -> dict[str, Any]:
        """The sidecar of a degraded video: the clip's params and how each frame's are derived."""
        record = self.describe(clip, seed=seed, relpath=relpath)
        fresh = [s.op for s in self.specs if s.op in FRESH_EACH_FRAME and "seed" not in s.fixed]
        record["video"] = {
            "frames": frames,
            "per_frame": per_frame,
            # The params above are the clip's; these ops get a new seed on every frame (all params with per_frame).
            "fresh_each_frame": "all params" if per_frame else fresh,
            "frame_params": "airtool.degrade.chain.Chain.frame_params(clip params, seed, relpath, frame index"
                            + (", per_frame=True)" if per_frame else ")"),
        }
        return record

    def describe(
        self, params_list: Sequence[Any], seed: int | None = None, relpath: str | None = None
    ) -> dict[str, Any]:
        """JSON-ready record of what was done: ops, specs, exact params, seed, airtool version."""
        from airtool._version import __version__

        return {
            "airtool_version": __version__,
            "seed": seed,
            "relpath": relpath,
            "ops": [
                {"op": s.op, "spec": s.text, "preset": s.preset, "params": dataclasses.asdict(p)}
                for s, p in zip(self.specs, params_list, strict=True)
            ],
        }


def replay(img: Tensor, description: Mapping[str, Any]) -> Tensor:
    """Apply the ops recorded by :meth:`Chain.describe` again (exact same output)."""
    out = img
    for entry in description["ops"]:
        module = OPS[entry["op"]]
        out = module.apply(out, module.Params(**entry["params"]))
    return out
