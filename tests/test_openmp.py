"""airtool/openmp.py: OpenMP threads sleep while they wait, unless the user chose otherwise."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airtool.openmp import USER_WAIT_SETTINGS, prefer_passive_wait


@pytest.fixture
def no_torch(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)


def test_passive_is_set_before_torch_loads(no_torch):
    env: dict[str, str] = {}
    assert prefer_passive_wait(env) and env == {"OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.parametrize("name", USER_WAIT_SETTINGS)
def test_a_wait_setting_of_the_user_is_left_alone(no_torch, name):
    env = {name: "ACTIVE" if name == "OMP_WAIT_POLICY" else "200"}
    assert not prefer_passive_wait(env) and env == {name: env[name]}


def test_nothing_is_set_once_torch_is_loaded(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", object())
    env: dict[str, str] = {}
    assert not prefer_passive_wait(env) and env == {}


def test_importing_the_api_sets_it_for_the_process_and_its_children():
    code = "import os, airtool.api; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in __import__("os").environ.items() if k not in USER_WAIT_SETTINGS}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "PASSIVE", out.stderr
