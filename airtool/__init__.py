"""airtool: all-in-one image restoration (noise, rain, haze, blur, low light) from the shell.

``import airtool`` is cheap: torch is imported only when a model runs.
"""

from __future__ import annotations

from typing import Any

from airtool._version import __version__

__all__ = ["__version__", "restore", "RestoreOptions", "list_models", "load_model", "read_image"]


def __getattr__(name: str) -> Any:
    if name in ("restore", "RestoreOptions"):
        from airtool import api

        return getattr(api, name)
    if name == "list_models":
        from airtool.models import model_names

        return model_names
    if name == "load_model":
        from airtool.models.weights import load_model

        return load_model
    if name == "read_image":
        from airtool.io.image import read_image

        return read_image
    raise AttributeError(f"module 'airtool' has no attribute {name!r}")
