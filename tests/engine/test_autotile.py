"""The CPU auto tile: the tiling predicted fastest from timings measured on this CPU."""

from __future__ import annotations

import json

import pytest
import torch

from airtool.engine import autotile
from airtool.engine.autotile import TileTimings, choose_tile, measure
from airtool.engine.device import Runtime
from airtool.engine.infer import Restorer, TileOptions
from airtool.models import get_spec

# Milliseconds per untiled pass measured on this project's EPYC (README, Speed): the time per
# pixel grows with the size, by a model-dependent amount.
SYMUNET_FP32 = TileTimings({256: 1.490, 512: 10.240, 1024: 51.438}, bytes_per_pixel=2000)
SYMUNET_S_FP32 = TileTimings({256: 0.070, 512: 0.369, 1024: 3.584}, bytes_per_pixel=400)
BIG = 64 * 2**30


def test_whole_image_when_the_overlap_would_cost_more_than_the_caches_save():
    assert choose_tile(SYMUNET_S_FP32, 500, 500, overlap=32, multiple=32, memory_budget=BIG) == 0
    flat = TileTimings({128: 0.016, 256: 0.066, 512: 0.27})  # time per pixel nearly constant
    assert choose_tile(flat, 560, 500, overlap=32, multiple=8, memory_budget=BIG) == 0


def test_only_what_was_measured_is_chosen():
    flat = TileTimings({128: 0.016, 256: 0.066, 512: 0.27})
    # 1500x1000 is 5.7 times the largest measured pass: never predicted whole, tiles up to 512 px
    # (384 px, between two measured sizes, fits this image with the fewest pixels in all)
    assert choose_tile(flat, 1000, 1500, overlap=32, multiple=8, memory_budget=BIG) == 384
    assert choose_tile(TileTimings({128: 0.016}), 1000, 1500, overlap=32, multiple=8, memory_budget=BIG) == 256
    assert choose_tile(TileTimings({128: 0.016}), 200, 240, overlap=32, multiple=8, memory_budget=BIG) == 0


def test_tiles_when_time_per_pixel_grows_faster_than_the_overlap_costs():
    # 1024 px: whole 51.4 s; 25 tiles of 256 px 37.3 s; 9 of 384 px (interpolated) about 40 s
    assert choose_tile(SYMUNET_FP32, 1024, 1024, overlap=32, multiple=32, memory_budget=BIG) == 256
    assert choose_tile(SYMUNET_S_FP32, 4000, 6000, overlap=32, multiple=32, memory_budget=BIG) > 0


def test_the_whole_image_only_when_it_fits_the_memory_budget():
    budget = 400 * 500 * 500 - 1  # one byte short for a 500 px pass at 400 B/pixel
    assert choose_tile(SYMUNET_S_FP32, 500, 500, overlap=32, multiple=32, memory_budget=budget) in (192, 256, 320, 384)


def test_interpolation_and_extrapolation_of_the_cost_per_pixel():
    t = SYMUNET_S_FP32
    assert t.per_pixel(256 * 256) == pytest.approx(0.070 / 256**2)
    assert t.per_pixel(256 * 256) < t.per_pixel(384 * 384) < t.per_pixel(512 * 512)
    assert t.per_pixel(2048 * 2048) > t.per_pixel(1024 * 1024)  # keeps growing past the last point
    assert t.per_pixel(64 * 64) == pytest.approx(0.070 / 256**2)  # flat below the first


def _fake_forward(cost_per_pixel, calls):
    def forward(side):
        calls.append(side)
        return cost_per_pixel(side) * side * side, 100.0 * side * side
    return forward


def test_measuring_stops_once_larger_sides_are_slower_per_pixel():
    calls: list[int] = []
    timings = measure(_fake_forward(lambda s: 1e-9 * (s / 128) ** 2, calls), multiple=8, up_to=4000)
    assert timings.complete and max(timings.seconds) < 512  # 2x the best per-pixel cost by 192 px
    assert timings.bytes_per_pixel == pytest.approx(100.0)


def test_measuring_stops_at_a_pass_over_the_time_limit_but_always_reaches_256_px():
    calls: list[int] = []
    timings = measure(_fake_forward(lambda s: 2e-5, calls), multiple=8, up_to=4000)
    assert timings.complete and max(timings.seconds) == 256  # 384 px would take 2.9 s: not run
    assert 384 not in calls
    slow = measure(_fake_forward(lambda s: 1e-4, []), multiple=8, up_to=4000)  # 128 px already takes 1.6 s
    assert sorted(slow.seconds) == [128, 192, 256]  # the old fixed tile is always among the choices


def test_measuring_goes_only_as_far_as_the_image_and_extends_later():
    calls: list[int] = []
    forward = _fake_forward(lambda s: 1e-8, calls)
    first = measure(forward, multiple=8, up_to=300)
    assert sorted(first.seconds) == [128, 192, 256, 384] and not first.complete and first.covers(300)
    assert not first.covers(700)
    calls.clear()
    more = measure(forward, multiple=8, up_to=700, known=first)
    assert sorted(more.seconds) == [128, 192, 256, 384, 512, 768]
    assert 256 not in calls and calls[0] == 512  # known sides are not measured again (one warm-up first)


def test_cache_round_trip_and_a_damaged_cache_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    autotile.store("cpu | model", SYMUNET_S_FP32)
    assert autotile.load("cpu | model") == SYMUNET_S_FP32 and autotile.load("other") is None
    (tmp_path / "airtool" / "tile-timings.json").write_text("{not json")
    assert autotile.load("cpu | model") is None
    autotile.store("cpu | model", SYMUNET_FP32)
    assert autotile.load("cpu | model") == SYMUNET_FP32


def _tiny_restorer():
    torch.manual_seed(0)
    spec = get_spec("symunet")
    return Restorer(spec.create("tiny"), spec, Runtime(torch.device("cpu"), "fp32"), TileOptions("auto", 32, 1))


def test_restorer_measures_once_per_cpu_and_model_then_reads_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = _tiny_restorer()
    tile = first.tile_size(300, 200)
    cache = json.loads((tmp_path / "airtool" / "tile-timings.json").read_text())
    assert list(cache) == [first.timing_key()] and "symunet" in first.timing_key()
    assert {128, 192} <= {int(s) for s in cache[first.timing_key()]["seconds"]}
    assert tile == choose_tile(first.tile_timings, 300, 200, 32, 32, autotile.MEMORY_FRACTION * autotile.available_memory())

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(autotile, "measure", no_measuring)
    assert _tiny_restorer().tile_size(300, 200) == tile
    assert _tiny_restorer().tile_size(100, 120) == 0  # no larger than the smallest tile: whole image, no timing


def test_auto_tile_follows_the_timings_of_this_cpu(tmp_path, monkeypatch):
    """500 px on a CPU where the whole image is faster than 9 overlapping 256 px tiles: untiled
    (the fixed 256 px tile was 1.8x slower there, issue 19); where 256 px is fastest: 256."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    restorer = _tiny_restorer()
    autotile.store(restorer.timing_key(), TileTimings(dict(SYMUNET_S_FP32.seconds), 400, complete=True))
    assert _tiny_restorer().tile_size(500, 500) == 0
    autotile.store(restorer.timing_key(), TileTimings(dict(SYMUNET_FP32.seconds), 400, complete=True))
    assert _tiny_restorer().tile_size(1024, 1024) == 256


def test_within_timing_noise_the_larger_tile_is_taken():
    flat = TileTimings({s: 1e-6 * s * s for s in (128, 192, 256)})
    # 600 px: sixteen 192 px windows and nine 256 px windows cover the same 589,824 pixels
    assert choose_tile(flat, 600, 600, overlap=32, multiple=8, memory_budget=BIG) == 256
    # 500 px: nine 192 px windows are 44 % fewer pixels than nine 256 px ones: a real gain
    assert choose_tile(flat, 500, 500, overlap=32, multiple=8, memory_budget=BIG) == 192
