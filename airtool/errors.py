"""Errors airtool raises on purpose. ``str(err)`` is the one line the CLI prints."""

from __future__ import annotations

from pathlib import Path


class AirtoolError(Exception):
    """Base class. The CLI turns these into one line on stderr and an exit code."""

    exit_code = 1


class UsageError(AirtoolError):
    """Bad combination of options or arguments (exit 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file or ``--set`` override is wrong; the message names the dotted key."""


class InputError(AirtoolError):
    """One input file cannot be used. The batch records it and goes on."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class OutputError(InputError):
    """One output cannot be written (permissions, disk full, path is a folder...)."""


class WeightsError(AirtoolError):
    """Weights missing, unsafe, corrupt, or not matching the model."""


class DeviceError(AirtoolError):
    """The requested device or precision is not available."""
