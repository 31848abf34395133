"""The one list of degradation ops: name -> op module (``noise``, ``rain``, ...).

``NAMES`` is the op names in the order ``airtool degrade`` lists them. ``OPS`` maps each name
to its module, imported on first use: this module imports neither torch nor numpy, so the CLI
can read ``NAMES`` at startup. ``lookup(name)`` is ``OPS[name]`` with a ``UsageError`` naming
the valid ops for an unknown name (``unknown_op`` builds that error). Each module provides the interface of
``airtool.degrade.base.DegradeOp``.

To add an op: write ``airtool/degrade/<name>.py`` and add one line to ``_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import ModuleType

from airtool.errors import UsageError

# Fixed table (no name-built import paths): what can be imported is exactly what is listed here.
_MODULES: dict[str, str] = {
    "noise": "airtool.degrade.noise",
    "rain": "airtool.degrade.rain",
    "haze": "airtool.degrade.haze",
    "blur": "airtool.degrade.blur",
    "lowlight": "airtool.degrade.lowlight",
    "jpeg": "airtool.degrade.jpeg",
}

NAMES: tuple[str, ...] = tuple(_MODULES)


class _Ops(Mapping[str, ModuleType]):
    """Read-only ``{name: module}`` over ``_MODULES``; a module is imported when first looked up."""

    def __getitem__(self, name: str) -> ModuleType:
        return importlib.import_module(_MODULES[name])  # KeyError for an unknown name, like a dict

    def __iter__(self) -> Iterator[str]:
        return iter(NAMES)

    def __len__(self) -> int:
        return len(NAMES)

    def __contains__(self, name: object) -> bool:
        return name in _MODULES

    def __repr__(self) -> str:
        return f"OPS({', '.join(NAMES)})"


OPS: Mapping[str, ModuleType] = _Ops()


def unknown_op(given: str) -> UsageError:
    """The error for an op name that is not in the registry (``given`` as the user wrote it)."""
    return UsageError(f"unknown degradation {given!r} (choose from: {', '.join(NAMES)})")


def lookup(name: str) -> ModuleType:
    """The op module called ``name``; ``UsageError`` naming the valid ops if there is none."""
    if name not in _MODULES:
        raise unknown_op(name)
    return OPS[name]
