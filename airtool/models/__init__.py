"""Model registry: ``--model`` names mapped to the module that defines each spec.

Names are known without importing torch; a model's module is imported only when asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from airtool.errors import UsageError

if TYPE_CHECKING:
    from airtool.models.spec import ModelSpec

# Ordered: the first entry is the default model.
# A value "module:NAME" takes the spec from attribute NAME instead of SPEC.
MODEL_MODULES: dict[str, str] = {
    "symunet": "airtool.models.symunet",
    "symunet-s": "airtool.models.symunet:SMALL_SPEC",
    "se-symunet": "airtool.models.se_symunet",
    "daair": "airtool.models.daair",
    "anyir": "airtool.models.anyir",
    "ndr-restore": "airtool.models.ndr_restore",
    "identity": "airtool.models.identity",
}
DEFAULT_MODEL = "symunet"


def model_names() -> list[str]:
    """Names of the models whose module exists in this install."""
    return [name for name, mod in MODEL_MODULES.items() if importlib.util.find_spec(mod.split(":")[0]) is not None]


def get_spec(name: str) -> ModelSpec:
    """Import and return a model's ``SPEC``; an unknown name lists the valid ones."""
    entry = MODEL_MODULES.get(name)
    module, _, attr = (entry or "").partition(":")
    if entry is None or importlib.util.find_spec(module) is None:
        raise UsageError(f"unknown model {name!r}; choose one of: {', '.join(model_names())}")
    return getattr(importlib.import_module(module), attr or "SPEC")


def list_specs() -> list[ModelSpec]:
    return [get_spec(name) for name in model_names()]
