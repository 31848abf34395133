"""Environment variables: only real options read them, under regular names."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer.main
from PIL import Image
from typer.testing import CliRunner

from airtool.cli import app

runner = CliRunner()


def _airtool(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "airtool", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTOOL_")}
    return {**env, "HOME": str(home), "SHELL": "/bin/bash", "XDG_CONFIG_HOME": str(home / ".config")}


@pytest.mark.slow
def test_version_variable_does_not_hijack_a_command(tmp_path):
    env = {**_clean_env(tmp_path), "AIRTOOL_VERSION": "1"}
    proc = _airtool(["models", "--json"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "symunet" in {row["name"] for row in json.loads(proc.stdout)}


@pytest.mark.slow
def test_install_completion_variable_does_not_touch_the_home_folder(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# mine\n")
    env = {**_clean_env(home), "AIRTOOL_INSTALL_COMPLETION": "1", "AIRTOOL_SHOW_COMPLETION": "1"}
    proc = _airtool(["models", "--json"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["name"] == "symunet"  # the command ran, not the completion installer
    assert (home / ".bashrc").read_text() == "# mine\n"
    assert sorted(p.name for p in home.rglob("*")) == [".bashrc"]


def _options(command, path=()):
    for param in command.params:
        if param.param_type_name == "option":
            yield path, param
    for name, sub in getattr(command, "commands", {}).items():
        yield from _options(sub, (*path, name))


def test_every_real_option_reads_one_regular_variable_and_nothing_else_does():
    root = typer.main.get_command(app)
    seen = 0
    for path, param in _options(root):
        if param.name in ("help", "version", "install_completion", "show_completion"):
            assert not param.envvar, f"{param.opts} must not read the environment"
            continue
        long_name = next(o for o in param.opts if o.startswith("--"))
        expected = "_".join(["AIRTOOL", *path, long_name[2:]]).upper().replace("-", "_")
        assert param.envvar == expected, (path, param.opts, param.envvar)
        assert re.fullmatch(r"AIRTOOL(_[A-Z0-9]+)+", param.envvar)
        seen += 1
    assert seen > 60  # restore, degrade, train, train export, evaluate, models, bench
    names = {p.envvar for _, p in _options(root) if p.envvar}
    assert {"AIRTOOL_CONFIG", "AIRTOOL_RESTORE_TILE", "AIRTOOL_RESTORE_FORMAT", "AIRTOOL_RESTORE_JSON",
            "AIRTOOL_TRAIN_EXPORT_OUT", "AIRTOOL_RESTORE_TILE_OVERLAP"} <= names
    assert not names & {"AIRTOOL_RESTORE_FMT", "AIRTOOL_RESTORE_JSON_OUT"}


def test_format_variable_uses_the_option_name(tmp_path, monkeypatch):
    src = tmp_path / "a.png"
    Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(src)
    monkeypatch.setenv("AIRTOOL_RESTORE_FMT", "webp")  # the old, irregular name: ignored
    result = runner.invoke(app, ["restore", str(src), str(tmp_path / "plain"), "-m", "identity"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "plain").glob("[!.]*")] == ["a.png"]
    monkeypatch.setenv("AIRTOOL_RESTORE_FORMAT", "jpg")
    result = runner.invoke(app, ["restore", str(src), str(tmp_path / "env"), "-m", "identity"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "env").glob("[!.]*")] == ["a.jpg"]
