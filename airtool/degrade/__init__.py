"""Synthetic degradations behind ``airtool degrade`` (pure functions on torch tensors).

``OPS`` maps each op name to its module. Every module has ``Params`` (frozen dataclass,
JSON-serialisable with ``dataclasses.asdict``), ``sample(rng, preset=None, **fixed)``,
``apply(img, params, rng=None)``, ``KEYS`` (user-settable keys with hard limits) and
``PRESETS`` (sampling ranges for light / medium / heavy). See ``base`` for the image contract
and ``chain`` for spec parsing, composition, per-file RNGs and the JSON sidecar.

Importing this package imports torch and numpy; ``import airtool`` does not import it.
"""

from __future__ import annotations

from types import ModuleType

from airtool.degrade import blur, haze, jpeg, lowlight, noise, rain

OPS: dict[str, ModuleType] = {
    "noise": noise,
    "rain": rain,
    "haze": haze,
    "blur": blur,
    "lowlight": lowlight,
    "jpeg": jpeg,
}

# chain needs OPS, so it is imported after the registry exists.
from airtool.degrade.chain import CANONICAL_ORDER, Chain, OpSpec, file_rng, parse_spec, replay  # noqa: E402

__all__ = ["CANONICAL_ORDER", "OPS", "Chain", "OpSpec", "file_rng", "parse_spec", "replay"]
