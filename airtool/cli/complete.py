"""Shell completion of model and preset names (fast: no torch, no model module imported)."""

from __future__ import annotations


def model_names(incomplete: str) -> list[str]:
    from airtool.models import model_names as names

    return [name for name in names() if name.startswith(incomplete)]


def model_lists(incomplete: str) -> list[str]:
    """``--model a,b,c`` (bench): complete the name after the last comma."""
    done, _, last = incomplete.rpartition(",")
    prefix = f"{done}," if done else ""
    return [prefix + name for name in model_names(last)]


def preset_names(incomplete: str) -> list[str]:
    from importlib import resources

    folder = resources.files("airtool.configs") / "train"
    names = sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
    return [name for name in names if name.startswith(incomplete)]
