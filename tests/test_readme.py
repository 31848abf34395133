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


COUNT_DATA_TESTS = """
import pytest
class Count:
    def pytest_collection_modifyitems(self, items):
        self.n = sum("shared_data" in getattr(item, "fixturenames", ()) for item in items)
count = Count()
pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "tests"], plugins=[count])
print("DATA_TESTS", count.n)
"""


def test_the_readme_says_how_many_tests_need_the_shared_data():
    import subprocess
    import sys

    said = re.search(r"\*\*Run the tests\*\*.*?\n(\d+) tests use real benchmark photos", _readme(), re.S)
    assert said, "the README should say how many tests skip without ../shared/data"
    proc = subprocess.run([sys.executable, "-c", COUNT_DATA_TESTS], cwd=ROOT, capture_output=True, text=True, timeout=300)
    counted = int(proc.stdout.split("DATA_TESTS")[-1])
    assert int(said.group(1)) == counted, f"the README says {said.group(1)}; {counted} tests use the shared_data fixture"


def test_the_try_it_command_writes_where_git_ignores():
    import shutil
    import subprocess

    command = re.search(r"\*\*Try it on a fresh machine\*\*.*?```bash\n(.*?)\n```", _readme(), re.S).group(1)
    output = re.search(r"airtool restore \S+ (\S+)", command).group(1)
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        import pytest

        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", output], cwd=ROOT)
    assert ignored.returncode == 0, f"the try-it command writes {output}, which git would track"


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")
