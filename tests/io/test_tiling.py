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
