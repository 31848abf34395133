"""What ``pip install .`` ships: every subpackage of airtool, and no development tools (tools/ and
tests/reference/ stay in the checkout)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "airtool"


def _setuptools() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_pyproject_lists_every_subpackage_and_no_development_tools():
    listed = set(_setuptools()["packages"])
    found = {"airtool", "airtool.weights"} | {
        "airtool." + ".".join(p.parent.relative_to(PACKAGE).parts) for p in PACKAGE.rglob("__init__.py")
        if p.parent != PACKAGE and "__pycache__" not in p.parts}
    assert found - listed == set(), "subpackages missing from pyproject's packages"
    assert listed - found == set(), "pyproject lists packages that do not exist"
    assert not any(name.startswith(("airtool.devtools", "tools", "tests")) for name in listed), "development tools would ship"
    assert not any(name.split(".")[0] in ("tools", "tests") for name in listed)


def test_only_the_listed_package_data_ships():
    """Without this, setuptools adds any file under airtool/ that a manifest names (a stale
    egg-info SOURCES.txt, a VCS plugin), development tools included."""
    assert _setuptools().get("include-package-data") is False


def _ignore(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in ("__pycache__", "build") or n.endswith((".egg-info", ".pyc"))}


@pytest.mark.slow
def test_the_wheel_holds_the_package_and_no_development_tools(tmp_path: Path):
    """Build the wheel (as pip install . does) from a clean copy: setuptools reuses a build/
    folder, which can hold files of earlier builds."""
    pytest.importorskip("setuptools")  # --no-build-isolation: no network in tests
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("airtool", "weights"):
        shutil.copytree(ROOT / name, src / name, ignore=_ignore)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp_path / "dist").glob("airtool-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"airtool"}, tops
    shipped_tools = [n for n in names if n.startswith(("airtool/devtools/", "tools/", "tests/"))
                     or Path(n).name.startswith("bench_") or Path(n).name.endswith("_reference.py")]
    assert not shipped_tools, f"development tools in the wheel: {shipped_tools}"
    expected = {"airtool/cli/__init__.py", "airtool/engine/inference/load.py", "airtool/weights/manifest.json",
                "airtool/configs/train/symunet-aio3.yaml", "airtool/examples/noisy.png"}
    assert expected <= set(names), expected - set(names)
