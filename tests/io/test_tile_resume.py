"""Kept tiles of one picture: a key that must match, final rows appended, windows dropped once final."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from airtool.io.tile_resume import MARK, TileStore, folder_for
from airtool.io.tiling import grid, run_tiled, tiled_bands

KEY = {"input": "abc", "tile": 64}


def test_the_folder_is_hidden_beside_the_output_and_its_name_stays_short(tmp_path):
    assert folder_for(tmp_path / "a.png") == tmp_path / f".a.png{MARK}"
    long = folder_for(tmp_path / ("é" * 200 + ".png"))
    assert long.parent == tmp_path and long.name.startswith(".") and len(long.name.encode()) <= 101 + len(MARK)


def test_another_key_starts_afresh_and_the_same_key_continues(tmp_path):
    windows = grid(100, 100, 64, 16)
    out = np.zeros((100, 100, 3), np.uint8)
    store = TileStore(tmp_path / "kept", {"weights_sha256": "w1"})
    assert store.begin(KEY, windows, out, 1) is None
    store.save_window(0, torch.ones(3, 64, 64))
    assert store.begin(KEY, windows, out, 1).start == 1
    assert TileStore(tmp_path / "kept", {"weights_sha256": "w2"}).begin(KEY, windows, out, 1) is None  # other weights
    assert not any((tmp_path / "kept").glob("w*.bin"))
    assert json.loads((tmp_path / "kept" / "key.json").read_text())["weights_sha256"] == "w2"


def test_the_tile_of_a_kept_run_is_offered_only_for_the_same_picture_and_settings(tmp_path):
    store = TileStore(tmp_path / "kept")
    store.begin(KEY, grid(100, 100, 64, 16), np.zeros((100, 100, 3), np.uint8), 1)
    assert store.kept_tile({"input": "abc", "tile": None}) == 64
    assert store.kept_tile({"input": "xyz", "tile": None}) == 0
    assert TileStore(tmp_path / "none").kept_tile(KEY) == 0


def test_windows_are_dropped_once_their_rows_are_kept_and_a_cut_row_is_dropped(tmp_path):
    windows = grid(100, 100, 64, 16)  # rows of windows at 0 and 36
    out = np.zeros((100, 100, 3), np.uint8)
    store = TileStore(tmp_path / "kept")
    store.begin(KEY, windows, out, 1)
    for index in range(len(windows)):
        store.save_window(index, torch.full((3, 64, 64), float(index)))
    store.add_rows(0, np.full((36, 100, 3), 7, np.uint8))
    assert sorted(p.name for p in store.folder.glob("w*.bin")) == [f"w{i:06d}.bin" for i in range(len(windows))]
    store.add_rows(30, np.full((40, 100, 3), 8, np.uint8))  # rows 30..35 are kept already: skipped
    assert store.rows == 70 and not (store.folder / "w000000.bin").exists()  # the first row of windows ends at 64
    with open(store.folder / "rows.bin", "ab") as fh:
        fh.write(b"\x09" * 10)  # a kill in the middle of a row
    again = TileStore(tmp_path / "kept")
    resume = again.begin(KEY, windows, out, 1)
    assert again.rows == 70 and (out[:36] == 7).all() and (out[36:70] == 8).all()
    assert resume.replay == 2 and resume.start == len(windows)  # the second row of windows is still needed
    assert torch.equal(resume.saved(3), torch.full((3, 64, 64), 3.0))
    with pytest.raises(ValueError, match="continue"):
        again.add_rows(80, np.zeros((5, 100, 3), np.uint8))
    again.remove()
    assert not again.folder.exists()


@pytest.mark.parametrize("k, batch", [(1, 1), (4, 2), (7, 1), (9, 3)])
def test_replayed_windows_give_the_bits_of_a_run_never_interrupted(tmp_path, k, batch):
    """tiled_bands resumed from a store: the rows kept plus the rows blended after are the
    uninterrupted result bit for bit (the same additions in the same order)."""
    image = torch.rand(1, 3, 150, 170, generator=torch.Generator().manual_seed(0))

    def fn(x):  # each window's output depends on the whole window: a wrong blend shows
        return torch.tanh(3 * x + x.mean(dim=(2, 3), keepdim=True))

    expected = run_tiled(image, fn, 64, 16, batch)[0].permute(1, 2, 0).numpy()
    windows = grid(150, 170, 64, 16)

    def crop(win):
        t, left, h, w = win
        return image[..., t : t + h, left : left + w]

    def run(store, out, progress):
        resume = store.begin(KEY, windows, out, batch)
        bands = tiled_bands(crop, 150, 170, fn, 64, 16, batch, progress=progress, resume=resume,
                            on_window=store.save_window)
        for top, band in bands:
            skip = max(store.rows - top, 0)
            if skip < band.shape[1]:
                out[top + skip : top + band.shape[1]] = band[:, skip:].permute(1, 2, 0).numpy()
                store.add_rows(top + skip, out[top + skip : top + band.shape[1]])

    def stop(done, total):
        if done >= k:
            raise KeyboardInterrupt

    out = np.zeros((150, 170, 3), np.float32)
    with pytest.raises(KeyboardInterrupt):
        run(TileStore(tmp_path / "kept"), out, stop)
    out = np.zeros((150, 170, 3), np.float32)
    run(TileStore(tmp_path / "kept"), out, None)
    assert np.array_equal(out, expected)


def test_a_folder_that_cannot_be_written_turns_keeping_off(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    store = TileStore(tmp_path / "file" / "kept")
    windows = grid(100, 100, 64, 16)
    assert store.begin(KEY, windows, np.zeros((100, 100, 3), np.uint8), 1) is None and store.off
    store.save_window(0, torch.ones(3, 64, 64))  # no error: the restore goes on
    store.add_rows(0, np.zeros((10, 100, 3), np.uint8))
    assert store.rows == 0
