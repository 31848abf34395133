"""The finished tiles of one large picture, kept beside its output, so that an interrupted
restore continues where it stopped and writes the same bytes as a run never interrupted.

A folder ``.NAME.airtool-tiles`` beside the output holds

- ``key.json``: everything the tiles depend on (the input's pixels, the model and its weights,
  precision, tile, overlap, batch, threads, versions); a folder with another key is cleared;
- ``rows.bin``: the output rows that are final, in the output's pixel type, top to bottom;
- ``w<index>.bin``: the float32 network output of each window that a row not yet final needs.

Rows above the band being blended are final: no later window reaches them (``io.tiling``). So a
window's file is deleted once all its rows are in ``rows.bin``, and what a resumed run needs is the
final rows plus the windows below them, replayed into the blend in their original order (the same
additions in the same order: the same bits). Window files are written atomically and ``rows.bin``
is synced before a window is deleted, so a kill at any moment leaves a state that resumes. The
folder is removed once the output is written. A folder that cannot be written (a full disk) only
turns resuming off: the restore itself goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from airtool.io.atomic import write_bytes
from airtool.io.tiling import Resume, Window

MARK = ".airtool-tiles"
_NAME_BYTES = 100  # of the output's name kept in the folder's name (names are limited to 255 bytes)


def folder_for(dst: Path) -> Path:
    """Where the tiles of output ``dst`` are kept: a hidden folder beside it (folder walks skip it)."""
    name = Path(dst).name[:_NAME_BYTES]
    while len(os.fsencode(name)) > _NAME_BYTES:
        name = name[:-1]
    return Path(dst).parent / f".{name}{MARK}"


class TileStore:
    """The kept tiles of one output; ``begin`` before the first window, then ``save_window`` and
    ``add_rows`` as the tiled run goes, ``remove`` once the output is written."""

    def __init__(self, folder: Path, about: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.about = dict(about or {})  # the caller's part of the key (model, weights)
        self.windows: list[Window] = []
        self.rows = 0
        self.row_bytes = 0
        self.off = False  # the folder could not be written: nothing more is kept

    def begin(self, key: dict[str, Any], windows: list[Window], out: np.ndarray, batch_size: int) -> Resume | None:
        """Start or continue the run ``key`` over ``windows``: the kept final rows are copied into
        ``out``; returns where to resume (None: from the first window)."""
        self.windows, self.row_bytes, self.rows = windows, out[:1].nbytes, 0
        key = {**self.about, **key}
        try:
            if self._key() != key:
                self._clear(key)
                return None
            self.rows = self._read_rows(out)
        except OSError:
            self.off, self.rows = True, 0
            return None
        replay = next((i for i, (t, _, h, _) in enumerate(windows) if t + h > self.rows), len(windows))
        kept = replay
        while kept < len(windows) and self._window_file(kept).is_file():
            kept += 1
        start = kept // batch_size * batch_size  # batches hold the windows they held: the same bits
        if replay == len(windows):  # every row is kept
            start = replay
        if start == 0 and self.rows == 0:
            return None
        return Resume(replay=replay, start=start, saved=self._load_window)

    def kept_tile(self, key: dict[str, Any]) -> int:
        """The tile of the kept run whose key is ``key`` in all but its tile; 0 if none is kept."""
        kept = self._key() or {}

        def rest(entries: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in entries.items() if k != "tile"}

        same = bool(kept) and rest(kept) == rest({**self.about, **key})
        return int(kept.get("tile") or 0) if same else 0

    def save_window(self, index: int, result: Tensor) -> None:
        if self.off:
            return
        try:
            write_bytes(self._window_file(index), result.float().contiguous().numpy().tobytes())
        except OSError:
            self.off = True

    def add_rows(self, top: int, rows: np.ndarray) -> None:
        """Append final rows starting at image row ``top`` (those already kept are skipped), then
        delete the windows no row still needs."""
        skip = max(self.rows - top, 0)
        if self.off or skip >= len(rows):
            return
        if top + skip != self.rows:
            raise ValueError(f"rows from {top} do not continue the {self.rows} kept")
        try:
            with open(self.folder / "rows.bin", "ab") as fh:
                fh.write(np.ascontiguousarray(rows[skip:]).tobytes())
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            self.off = True  # a row cut short is dropped on resume (``_read_rows``)
            return
        self.rows = top + len(rows)
        for index, (t, _, h, _) in enumerate(self.windows):
            if t + h > self.rows:
                break
            with contextlib.suppress(FileNotFoundError):
                self._window_file(index).unlink()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _key(self) -> dict | None:
        try:
            return json.loads((self.folder / "key.json").read_text())
        except (OSError, ValueError):
            return None

    def _clear(self, key: dict[str, Any]) -> None:
        self.remove()
        self.folder.mkdir(parents=True)
        self.rows = 0
        write_bytes(self.folder / "key.json", (json.dumps(key, sort_keys=True) + "\n").encode())

    def _read_rows(self, out: np.ndarray) -> int:
        """Copy the kept rows into ``out``; a row cut short by a kill is dropped from the file."""
        path = self.folder / "rows.bin"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return 0
        rows = min(size // self.row_bytes, len(out))
        if size != rows * self.row_bytes:
            os.truncate(path, rows * self.row_bytes)
        if rows:
            out[:rows] = np.fromfile(path, dtype=out.dtype, count=rows * out[:1].size).reshape(out[:rows].shape)
        return rows

    def _window_file(self, index: int) -> Path:
        return self.folder / f"w{index:06d}.bin"

    def _load_window(self, index: int) -> Tensor:
        _, _, h, w = self.windows[index]
        data = np.fromfile(self._window_file(index), dtype=np.float32)
        return torch.from_numpy(data.reshape(-1, h, w))
