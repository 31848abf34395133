"""Which recipe (model, weights, options) made each output of a folder.

Skipping existing outputs is how a run resumes, but an output made by *another* model, weights
file or options must not count as done. So each output folder holds a small record,
``.airtool-provenance.jsonl`` (hidden, so folder walks pass it over): an append-only log with
one JSON object per line, either a recipe ``{"recipe": ID, "model": ..., ...}`` or an output
``{"output": "sub/a.png", "recipe": ID, "size": N, "mtime_ns": T, "inode": I}``.

The output line is appended once the output's temporary file is complete, just before it is
renamed into place, and names that file's size, modification time and inode (a rename keeps
all three). What made an output is the recipe of the line that matches the file as it is
now, so every interruption leaves a true record: killed between the line and the rename, the
older output is still described by its older line; an output changed by hand matches no line
(origin unknown, treated as before: skipped). Each line is one ``write`` to a file opened with
``O_APPEND`` and then synced, so two runs at once interleave whole lines and lose none; a line
cut short by a crash or a full disk is ignored when reading (every record begins with a
newline, so it cannot swallow the next). Nothing is ever rewritten in place.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path

FILE_NAME = ".airtool-provenance.jsonl"


@dataclass(frozen=True)
class Recipe:
    """What decides an output's pixels. ``weights`` (the file name) is shown, not compared."""

    model: str
    weights_sha256: str | None
    variant: str | None
    precision: str
    tile: int | str
    tile_overlap: int
    quality: int
    weights: str | None = None
    # keep|restore: what became of pictures that look like a task the weights were not trained
    # for (engine/inference/untrained.py); records from before it have none, and restored them.
    untrained: str = "restore"

    @property
    def id(self) -> str:
        compared = {k: v for k, v in asdict(self).items() if k != "weights"}
        return hashlib.sha256(json.dumps(compared, sort_keys=True).encode()).hexdigest()[:16]

    def differences(self, other: Recipe) -> list[tuple[str, str, str]]:
        """(what, this recipe's value, the other's) for every compared field that differs."""
        out = []
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "weights" or mine == theirs:
                continue
            if f.name == "weights_sha256":
                out.append(("weights", _weights(self), _weights(other)))
            else:
                out.append((f.name.replace("_", "-"), str(mine), str(theirs)))
        return out


def _weights(recipe: Recipe) -> str:
    if recipe.weights_sha256 is None:
        return "none"
    return f"{recipe.weights or '?'} (sha256 {recipe.weights_sha256[:12]})"


class Provenance:
    """The record of one output folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / FILE_NAME
        self._lock = threading.Lock()
        self._written: set[str] = set()  # recipe ids this process has appended already

    def read(self) -> tuple[dict[str, Recipe], dict[str, list[tuple[int, int, int, str]]]]:
        """(recipes by id, output rel path -> [(size, mtime_ns, inode, recipe id), ...])."""
        recipes: dict[str, Recipe] = {}
        outputs: dict[str, list[tuple[int, int, int, str]]] = {}
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return recipes, outputs
        names = {f.name for f in fields(Recipe)}
        for line in text.splitlines():
            try:
                item = json.loads(line)
                if "output" in item:
                    stamp = (int(item["size"]), int(item["mtime_ns"]), int(item["inode"]), str(item["recipe"]))
                    outputs.setdefault(str(item["output"]), []).append(stamp)
                elif "recipe" in item:
                    recipes[str(item["recipe"])] = Recipe(**{k: v for k, v in item.items() if k in names})
            except (ValueError, TypeError, KeyError):
                continue  # a line cut short by a crash, or written by a newer airtool
        return recipes, outputs

    def made_by(self, outputs: list[Path]) -> dict[Path, Recipe]:
        """The recipe that made each existing output in ``outputs``, where the record knows it."""
        recipes, stamps = self.read()
        found = {}
        for dst in outputs:
            try:
                st = os.stat(dst)
            except OSError:
                continue
            now = (st.st_size, st.st_mtime_ns, st.st_ino)
            match = [s[3] for s in stamps.get(self._rel(dst), []) if s[:3] == now]
            if match and match[-1] in recipes:
                found[dst] = recipes[match[-1]]
        return found

    def record(self, tmp: Path, dst: Path, recipe: Recipe) -> None:
        """Append that ``tmp`` (the complete file about to be renamed to ``dst``) was made by ``recipe``."""
        st = os.stat(tmp)
        line = {"output": self._rel(dst), "recipe": recipe.id, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                "inode": st.st_ino}
        with self._lock:
            if recipe.id not in self._written:
                self._append({"recipe": recipe.id, **asdict(recipe)})
                self._written.add(recipe.id)
            self._append(line)

    def _append(self, item: dict) -> None:
        # Each record starts a line of its own, so a line cut short by a full disk cannot swallow the next.
        data = ("\n" + json.dumps(item, sort_keys=True)).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _rel(self, dst: Path) -> str:
        return Path(os.path.relpath(dst, self.folder)).as_posix()
