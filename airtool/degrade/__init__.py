"""Synthetic degradations behind ``airtool degrade`` (pure functions on torch tensors).

``OPS`` (from ``registry``, the one list of ops) maps each op name to its module. Every module
has ``Params`` (frozen dataclass, JSON-serialisable with ``dataclasses.asdict``),
``sample(rng, preset=None, **fixed)``, ``apply(img, params, rng=None)``, ``KEYS`` (user-settable
keys with hard limits) and ``PRESETS`` (sampling ranges for light / medium / heavy). See ``base``
for the image contract and ``chain`` for spec parsing, composition, per-file RNGs and the JSON
sidecar.

Importing this package imports only the registry (no torch, no numpy), so the CLI can read the
op names at startup; the op modules and ``chain`` (which import torch and numpy) load on first
use. ``import airtool`` does not import this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airtool.degrade.registry import NAMES, OPS, lookup

if TYPE_CHECKING:
    from airtool.degrade.chain import CANONICAL_ORDER, Chain, OpSpec, file_rng, parse_spec, replay

_FROM_CHAIN = frozenset({"CANONICAL_ORDER", "Chain", "OpSpec", "file_rng", "parse_spec", "replay"})

__all__ = ["CANONICAL_ORDER", "NAMES", "OPS", "Chain", "OpSpec", "file_rng", "lookup", "parse_spec", "replay"]


def __getattr__(name: str) -> Any:
    """``Chain`` & co. from ``chain``, and the op modules (``airtool.degrade.noise``), on first use."""
    if name in _FROM_CHAIN:
        from airtool.degrade import chain

        return getattr(chain, name)
    if name in OPS:
        return OPS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
