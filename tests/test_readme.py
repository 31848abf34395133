"""The README's Reliability section names the tests that prove each guarantee: they must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _reliability_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("## Reliability", 1)[1].split("\n## ", 1)[0]


def test_every_test_named_in_the_reliability_section_exists():
    named: list[tuple[str, str]] = []
    current = None
    for path, name in re.findall(r"`(tests/[\w/]+\.py)?::(\w+)`", _reliability_section()):
        current = path or current
        named.append((current, name))
    assert len(named) >= 15
    for path, name in named:
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert name in functions, f"README names {path}::{name}, which does not exist"
