"""The examples in --help can be run as written from a checkout."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer.main

from airtool.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _examples():
    def walk(command, path):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))

    for path, command in walk(typer.main.get_command(app), ()):
        for line in (command.help or "").splitlines():
            if line.strip().startswith("airtool "):
                yield path, shlex.split(line.strip())


def _value(words: list[str], *names: str) -> list[str]:
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w in names]


def test_every_weights_file_named_in_an_example_exists():
    named = [(path, w) for path, words in _examples() for w in _value(words, "-w", "--weights")]
    assert named, "the examples should show --weights"
    for path, weights in named:
        assert (ROOT / weights).is_file(), f"'airtool {' '.join(path)} --help' names {weights}, which does not exist"


def test_no_example_writes_over_a_shipped_file():
    outs = [w for _, words in _examples() for w in _value(words, "--out", "-o")]
    assert outs, "the train export example should show --out"
    for out in outs:
        assert not (ROOT / out).exists(), f"an example would overwrite {out}"
        assert not Path(out).parts or Path(out).parts[0] != "weights", f"{out}: examples keep clear of weights/"
