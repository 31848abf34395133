"""The committed completions and man page match what the CLI generates today."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    from tools import gen_cli_docs

    return gen_cli_docs


def test_completions_and_man_page_are_current():
    for path, text in _generator().generate().items():
        assert path.is_file(), f"{path} missing: run python -m tools.gen_cli_docs"
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is stale: run python -m tools.gen_cli_docs"


def test_man_page_lists_every_restore_option():
    page = (ROOT / "man" / "airtool.1").read_text()
    for option in ("\\-\\-tile\\-overlap", "\\-\\-weights", "\\-\\-precision", "\\-\\-json", "\\-\\-dry\\-run"):
        assert option in page
    assert ".SH EXIT STATUS" in page and ".SH ENVIRONMENT" in page


def test_zsh_script_starts_with_compdef():
    assert (ROOT / "completions" / "_airtool").read_text().startswith("#compdef airtool")


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff not installed")
def test_man_page_renders_without_warnings():
    proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(ROOT / "man" / "airtool.1")], capture_output=True, text=True)
    assert proc.returncode == 0 and "warning" not in proc.stderr
