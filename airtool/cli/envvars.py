"""Environment variables for options: ``AIRTOOL_<COMMAND>_<OPTION>``, and nothing else.

Click's ``auto_envvar_prefix`` gives *every* parameter an environment variable, including the
eager ones (``--version``, ``--install-completion``), so ``AIRTOOL_VERSION=1 airtool models``
printed the version and ``AIRTOOL_INSTALL_COMPLETION=1`` edited ``~/.bashrc``; and the names
came from the Python parameter names (``AIRTOOL_RESTORE_FMT`` for ``--format``). Instead, each
real option is given one variable named after the command path and its long option name:
``restore --tile-overlap`` reads ``AIRTOOL_RESTORE_TILE_OVERLAP``, ``train export --out`` reads
``AIRTOOL_TRAIN_EXPORT_OUT`` and the global ``--config`` reads ``AIRTOOL_CONFIG``.
"""

from __future__ import annotations

from typing import Any

PREFIX = "AIRTOOL"
# Parameters that act instead of setting a value: never read from the environment.
NOT_FROM_ENV = frozenset({"help", "version", "install_completion", "show_completion"})


def envvar_name(command_path: tuple[str, ...], option: Any) -> str:
    """``AIRTOOL_<COMMAND>_<OPTION>`` from the command path and the option's long name."""
    longs = [o for o in option.opts if o.startswith("--")] or list(option.opts)
    name = longs[0].lstrip("-")
    return "_".join([PREFIX, *command_path, name]).upper().replace("-", "_")


def assign(command: Any, path: tuple[str, ...] = ()) -> None:
    """Give every real option under ``command`` (a Click command or group) its variable."""
    for param in command.params:
        if param.param_type_name != "option":
            continue
        param.envvar = None if param.name in NOT_FROM_ENV else envvar_name(path, param)
    for name, sub in getattr(command, "commands", {}).items():
        assign(sub, (*path, name))
