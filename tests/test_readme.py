"""The README is a short user's guide whose facts hold; the pages under docs/ keep theirs.

The README's two fresh-machine commands, its count of tests that need the shared data, its
sections and exit codes; docs/usage.md's Reliability section names the tests that prove each
guarantee; every link in the README and the docs leads somewhere that exists.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 300


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_is_a_short_guide_with_its_sections_in_order():
    text = _readme()
    assert len(text.splitlines()) <= README_MAX_LINES, "README.md is the PyPI page: keep it a short guide, details in docs/"
    headings = re.findall(r"^## (.+)$", text, re.M)
    expected = ["Try it", "Quick start", "Models", "Commands", "Exit status", "Documentation"]
    assert headings == expected, f"README sections {headings}, expected {expected}"
    assert "![before/after](airtool/examples/before_after.jpg)" in text.split("\n## ", 1)[0]
    commands = re.findall(r"^### (\w+)$", _section(text, "## Commands"), re.M)
    assert {"restore", "degrade", "evaluate", "train", "bench", "models"} <= set(commands)


def test_the_readme_test_command_is_what_ci_runs():
    said = re.search(r"\*\*Run the tests\*\*.*?```bash\n(.*?)\n```", _readme(), re.S).group(1)
    steps = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.startswith(("#", "set ", "cd "))]
    ci = " && ".join(steps).replace("pip install -q ", "pip install ")
    assert said == ci, f"the README's test command\n  {said}\nis not what .ci/run runs\n  {ci}"


def test_the_exit_codes_in_the_readme_are_the_cli_s():
    from airtool.cli import EXIT_CODES

    table = _section(_readme(), "## Exit status")
    codes = re.findall(r"^\| (\d+) \|", table, re.M)
    assert codes and codes == re.findall(r"\b(\d+) (?=[a-z])", EXIT_CODES), (codes, EXIT_CODES)


def _reliability_section() -> str:
    return _section((ROOT / "docs" / "usage.md").read_text(encoding="utf-8"), "## Reliability")


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
        assert name in functions, f"docs/usage.md names {path}::{name}, which does not exist"


COUNT_DATA_TESTS = """
import pytest
class Count:
    def pytest_collection_modifyitems(self, items):
        self.n = sum("shared_data" in getattr(item, "fixturenames", ()) for item in items)
count = Count()
pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "tests"], plugins=[count])
print("DATA_TESTS", count.n)
"""


@pytest.mark.slow
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


DOCS = ["README.md", "CHANGELOG.md", "ARCHITECTURE.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md")))]


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
        anchors.add(slug.replace(" ", "-"))
    return anchors


def test_every_link_in_the_readme_and_the_docs_leads_somewhere():
    for name in DOCS:
        page = ROOT / name
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{name} links to {target}, which does not exist"
            assert ROOT in linked.parents or linked == ROOT, f"{name} links outside the repository: {target}"
            if anchor and linked.suffix == ".md":
                assert anchor in _anchors(linked.read_text(encoding="utf-8")), f"{name} links to {target}: no such heading"


def test_the_docs_pages_hold_what_the_readme_sends_readers_there_for():
    pages = {name: (ROOT / "docs" / name).read_text(encoding="utf-8") for name in
             ("usage.md", "models.md", "training.md", "performance.md", "history.md")}
    assert {"## Configuration", "## Pipelines and cron", "## What is kept in a picture", "## Video",
            "## Reliability"} <= set(re.findall(r"^## .+$", pages["usage.md"], re.M))
    assert {"## The SymUNet training campaign", "## Training and benchmark data", "## The GPU recipe",
            "## Several GPUs, and CPU ranks"} <= set(re.findall(r"^## .+$", pages["training.md"], re.M))
    campaign = _section(pages["training.md"], "## The SymUNet training campaign")
    for fact in ("airtool train campaign --until", "--hours", "symunet-campaign", "rewarm_steps",
                 "kill -STOP -PGID", "kill -CONT -PGID", "0.15 dB", "campaign-curve.csv", "campaign-curve.png"):
        assert fact in campaign, f"docs/training.md's campaign section should say {fact!r}"
    # every speed or memory figure in docs/performance.md names its CPU: one of the CPUs it lists
    cpus = re.findall(r"^\| (Zen 4|Zen 3|Xeon 207) \|", _section(pages["performance.md"], "## The CPUs"), re.M)
    assert set(cpus) == {"Zen 4", "Zen 3", "Xeon 207"}
    # the scores live in weights/manifest.json and the README's generated table only
    for name, page in pages.items():
        if name != "history.md":
            assert "29.74/0.879" not in page, f"docs/{name} repeats the shipped daair's scores: link the README's table"


def test_the_parameter_counts_in_docs_models_are_the_specs():
    """Parameter counts live in the model specs (``airtool models`` prints them); the docs' table
    of the networks repeats them for readers, so it must not drift from the specs."""
    from airtool.models.facts_table import FACTS

    page = _section((ROOT / "docs" / "models.md").read_text(), "## The networks")
    rows = dict(re.findall(r"^\| `([a-z-]+)`[^|]*\|[^|]*\| ([\d,]+)", page, re.M))
    assert set(rows) == set(FACTS), f"docs/models.md lists {sorted(rows)}; the registry has {sorted(FACTS)}"
    for name, count in rows.items():
        assert int(count.replace(",", "")) == FACTS[name]["params"], f"docs/models.md: {name} has {count} parameters"
