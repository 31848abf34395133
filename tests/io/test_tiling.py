from __future__ import annotations

import torch
from torch import nn

from airtool.io import tiling


def test_starts_cover_and_keep_full_windows():
    for size, tile, overlap in [(100, 32, 8), (64, 64, 8), (65, 32, 16), (10, 32, 8), (333, 128, 32)]:
        s = tiling.starts(size, tile, overlap)
        covered = set()
        for a in s:
            covered.update(range(a, min(a + tile, size)))
            assert a + min(tile, size) <= size
        assert covered == set(range(size))


def test_weights_positive_and_flat_inside():
    w = tiling.window_weight((32, 32, 64, 64), 200, 200, 16)
    assert (w > 0).all() and w[20:44, 20:44].eq(1).all()


def test_tiled_equals_untiled_for_a_local_model():
    torch.manual_seed(0)
    # Receptive field 9 px < overlap: tiling must reproduce the whole-image result.
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 5, padding=2), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    image = torch.rand(1, 3, 97, 131)
    with torch.no_grad():
        whole = net(image)
        tiled = tiling.run_tiled(image, net, tile=48, overlap=16, batch_size=3)
    assert (tiled - whole).abs().max() < 1 / 255


def _whole_image_blend(windows, results, height, width, overlap):
    """The blend as it was before bands: image-sized sums, then one division."""
    out = torch.zeros((results[0].shape[0], height, width))
    norm = torch.zeros((height, width))
    for (t, left, h, w), result in zip(windows, results, strict=True):
        weight = tiling.window_weight((t, left, h, w), height, width, overlap)
        out[:, t : t + h, left : left + w] += result * weight
        norm[t : t + h, left : left + w] += weight
    return out / norm


def test_bands_equal_the_whole_image_blend_bit_for_bit():
    torch.manual_seed(1)
    for height, width, tile, overlap in [(301, 157, 64, 16), (64, 300, 64, 24), (130, 130, 48, 47), (97, 40, 32, 0)]:
        windows = tiling.grid(height, width, tile, overlap)
        results = [torch.rand(3, h, w) for _, _, h, w in windows]
        whole = _whole_image_blend(windows, results, height, width, overlap)
        blender = tiling.BandBlender(height, width, 3, windows[0][2], overlap)
        bands = [band for win, result in zip(windows, results, strict=True) for band in blender.add(win, result)]
        bands += blender.finish()
        assert [top for top, _ in bands] == sorted({t for t, _, _, _ in windows})  # one band per window row
        assert torch.equal(torch.cat([band for _, band in bands], dim=1), whole)


def test_band_memory_is_one_window_tall_whatever_the_image_height():
    """The sums held while blending are band_height rows, and each band is handed back before any
    window below it is computed (so a caller can write it out and free it)."""
    height, width, tile, overlap = 2000, 70, 64, 16
    seen: list[int] = []
    emitted: list[tuple[int, int]] = []  # (first row of a band, windows computed when it came)

    def fn(batch):
        seen.extend([0] * len(batch))
        return batch

    def crop(win):
        t, left, h, w = win
        return torch.full((1, 3, h, w), float(t))

    bands = tiling.tiled_bands(crop, height, width, fn, tile, overlap, batch_size=2)
    for top, band in bands:
        assert band.shape[0] == 3 and band.shape[2] == width and band.shape[1] <= tile
        emitted.append((top, len(seen)))
    windows = tiling.grid(height, width, tile, overlap)
    assert emitted[0][1] < 6 and emitted[-1][1] == len(windows)  # streamed, not all at the end
    assert sum(1 for _ in emitted) == len({t for t, _, _, _ in windows})
    blender = tiling.BandBlender(height, width, 3, tile, overlap)
    for win in windows:
        blender.add(win, torch.zeros(3, win[2], win[3]))
        assert blender.sum.shape == (3, tile, width) and blender.norm.shape == (tile, width)


def test_windows_out_of_order_are_refused():
    blender = tiling.BandBlender(100, 100, 3, 32, 8)
    blender.add((40, 0, 32, 32), torch.zeros(3, 32, 32))
    try:
        blender.add((0, 0, 32, 32), torch.zeros(3, 32, 32))
    except ValueError as err:
        assert "grid order" in str(err)
    else:
        raise AssertionError("a window above the band was accepted")


def test_tiled_bands_report_windows_done_before_the_bands_they_finish():
    """``progress(done, total)``: (0, n) first, then after each batch, and always before the bands
    that batch made final are handed on (so a progress bar never lags the written rows)."""
    height, width, tile, overlap = 200, 90, 64, 16
    windows = tiling.grid(height, width, tile, overlap)
    calls: list[tuple[int, int]] = []
    computed = [0]

    def fn(batch):
        computed[0] += len(batch)
        return batch

    def crop(win):
        return torch.zeros((1, 3, win[2], win[3]))

    for _ in tiling.tiled_bands(crop, height, width, fn, tile, overlap, batch_size=2, 
                                progress=lambda done, total: calls.append((done, total))):
        assert calls[-1][0] == computed[0]
    assert calls[0] == (0, len(windows)) and calls[-1] == (len(windows), len(windows))
    assert [done for done, _ in calls] == sorted({min(i, len(windows)) for i in range(0, len(windows) + 2, 2)})
    whole: list[tuple[int, int]] = []
    list(tiling.tiled_bands(crop, height, width, fn, 0, overlap, progress=lambda d, t: whole.append((d, t))))
    assert whole == [(0, 1), (1, 1)]
