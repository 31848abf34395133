"""The ``airtool`` command: a thin Typer layer over ``airtool.api``.

Each subcommand lives in its own module with a ``register(app)`` function. Nothing heavy is
imported here, so ``--help``, ``--version`` and tab completion stay fast (no torch, no numpy).
Settings come from, highest first: the command line, ``AIRTOOL_<COMMAND>_<OPTION>``
environment variables, the YAML file given with ``--config``, then the defaults.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from airtool._version import __version__
from airtool.cli import envvars

EXIT_CODES = """Exit status: 0 all done (skipped files count as done), 1 fatal error (model, weights, device,
unwritable output folder), 2 usage error, 3 some inputs failed while all others were written,
130 interrupted, finished work kept (training stopped by kill: 143, with a checkpoint)."""



class AirtoolGroup(TyperGroup):
    """The root command: gives each real option its ``AIRTOOL_<COMMAND>_<OPTION>`` variable."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        envvars.assign(self)


app = typer.Typer(
    name="airtool",
    cls=AirtoolGroup,
    help=f"All-in-one image restoration: noise, rain, haze, blur and low light.\n\n{EXIT_CODES}",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

COMMAND_MODULES = ("restore", "degrade", "train", "evaluate", "models", "bench")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"airtool {__version__}")
        raise typer.Exit()


def _load_config(ctx: typer.Context, path: Optional[Path]) -> None:
    if path is None:
        return
    import yaml

    from airtool.cli.common import fail
    from airtool.errors import ConfigError

    try:
        data = yaml.safe_load(path.read_text()) or {}
        ctx.default_map = _default_map(ctx.command, data, ())
    except (OSError, yaml.YAMLError) as err:
        fail(ConfigError(f"cannot read {path}: {err}"))
    except ConfigError as err:
        fail(ConfigError(f"{path}: {err}"))


def _default_map(command: Any, data: Any, path: tuple[str, ...]) -> dict[str, Any]:
    """YAML options per command -> Click's ``default_map`` (keyed by parameter name).

    Keys are option names as typed on the command line (``tile-overlap``, ``format``, ``json``)
    or with underscores; an unknown command or option is an error naming its dotted key.
    """
    from airtool.errors import ConfigError

    where = ".".join(path) or "the file"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of command name to options, e.g. 'restore: {{tile: 256}}'")
    subcommands = getattr(command, "commands", {})
    options = [p for p in command.params if p.param_type_name == "option" and p.name not in envvars.NOT_FROM_ENV]
    long_names = {o[2:]: p.name for p in options for o in p.opts if o.startswith("--")} if path else {}
    by_key = {**{k.replace("-", "_"): v for k, v in long_names.items()}, **{p.name: p.name for p in options if path}}
    result: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name in subcommands:
            result[name] = _default_map(subcommands[name], value, (*path, str(key)))
        elif name in by_key:
            result[by_key[name]] = value
        else:
            what = "option" if path else "command"
            known = ", ".join(sorted(long_names) + sorted(subcommands))
            raise ConfigError(f"{'.'.join([*path, str(key)])}: unknown {what} (known: {known})")
    return result


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    config: Annotated[
        Optional[Path],
        typer.Option("--config", help="YAML file of defaults per command, e.g. 'restore: {tile: 256}'."),
    ] = None,
) -> None:
    _load_config(ctx, config)


for _name in COMMAND_MODULES:
    _module = f"airtool.cli.{_name}"
    if importlib.util.find_spec(_module) is not None:
        importlib.import_module(_module).register(app)


def main() -> None:
    """Entry point: run the app, turning airtool errors into one line and an exit code."""
    from airtool.errors import AirtoolError
    from airtool.openmp import prefer_passive_wait
    from airtool.report import one_line, print_error

    prefer_passive_wait()  # before anything imports torch: fair speed beside other jobs
    try:
        app(standalone_mode=True)
    except AirtoolError as err:
        print_error(f"airtool: error: {one_line(str(err))}")
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print_error("airtool: interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as err:  # a bug: one line for cron logs, the traceback on request
        if os.environ.get("AIRTOOL_DEBUG"):
            raise
        print_error(f"airtool: internal error: {type(err).__name__}: {one_line(str(err))} (set AIRTOOL_DEBUG=1 for a traceback)")
        sys.exit(1)
