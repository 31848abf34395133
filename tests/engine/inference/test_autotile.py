"""The CPU auto tile: the tiling predicted fastest from timings measured on this CPU."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from airtool.engine.hardware import cpu_share
from airtool.engine.hardware.device import Runtime
from airtool.engine.inference import autotile
from airtool.engine.inference.autotile import TileTimings, choose_tile, measure
from airtool.engine.inference.infer import Restorer, TileOptions
from airtool.models import get_spec
from airtool.models.spec import WHOLE_IMAGE_ONLY

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
        return autotile.Pass(cost_per_pixel(side) * side * side, 100.0 * side * side)
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
    autotile.drop("cpu | model")
    assert autotile.load("cpu | model") is None


def _tiny_restorer(min_tile=None):
    """Tiny SymUNet; ``min_tile`` replaces the spec's measured floors (None: {"noise": 128})."""
    torch.manual_seed(0)
    spec = replace(get_spec("symunet"), min_tile={"noise": 128} if min_tile is None else min_tile)
    return Restorer(spec.create("tiny"), spec, Runtime(torch.device("cpu"), "fp32"), TileOptions("auto", 32, 1))


def _fake_passes(monkeypatch, cost_per_pixel=lambda side: 1e-6, calls=None, disturbed=lambda side: False):
    """Restorer.time_pass without a clock: seconds from ``cost_per_pixel``, 100 bytes per pixel."""
    def time_pass(self, side):
        if calls is not None:
            calls.append(side)
        return autotile.Pass(cost_per_pixel(side) * side * side, 100.0 * side * side, disturbed(side))

    monkeypatch.setattr(Restorer, "time_pass", time_pass)


def test_restorer_measures_once_per_cpu_and_model_then_reads_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _fake_passes(monkeypatch, lambda side: 1e-6 * side / 128)  # per-pixel cost grows: tiles win at 300x200
    first = _tiny_restorer()
    tile = first.tile_size(300, 200)
    cache = json.loads((tmp_path / "airtool" / "tile-timings.json").read_text())
    assert list(cache) == [first.timing_key()] and "symunet" in first.timing_key()
    assert {128, 192} <= {int(s) for s in cache[first.timing_key()]["seconds"]}
    assert tile == choose_tile(first.tile_timings, 300, 200, 32, 32,
                               autotile.MEMORY_FRACTION * autotile.available_memory(), 128) > 0

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
    assert _tiny_restorer({"noise": 128, "haze": 384}).tile_size(1024, 1024) in (0, 384, 512)  # never below 384
    assert _tiny_restorer({"haze": WHOLE_IMAGE_ONLY}).tile_size(1024, 1024) == 0


def test_auto_never_goes_below_the_models_floor_unless_memory_forces_it():
    # 1024 px with SymUNet's timings: 256 px tiles are fastest, but a 384 px floor rules them out
    assert choose_tile(SYMUNET_FP32, 1024, 1024, overlap=32, multiple=32, memory_budget=BIG, floor=384) in (0, 384, 512)
    assert choose_tile(SYMUNET_FP32, 1024, 1024, overlap=32, multiple=32, memory_budget=BIG, floor=math.inf) == 0
    # 2000 px is beyond the measured sizes: the whole image still, when it is the only safe choice
    assert choose_tile(SYMUNET_FP32, 2000, 2000, overlap=32, multiple=32, memory_budget=BIG, floor=math.inf) == 0
    # memory holds 700 px passes at 2000 B/pixel: the largest tile that fits, below the floor
    budget = 2000 * 700 * 700
    assert choose_tile(SYMUNET_FP32, 2000, 2000, overlap=32, multiple=32, memory_budget=budget, floor=math.inf) == 672
    assert choose_tile(TileTimings({128: 0.01}, 2000), 2000, 2000, overlap=32, multiple=32, memory_budget=budget,
                       floor=math.inf) == 672  # too few timings to compare: the same rule


def test_without_timings_to_compare_the_fixed_tile_or_the_floor_and_whole_up_to_twice_that():
    """Measuring disturbed at its first pass leaves one timing: no speed to compare."""
    one = TileTimings({128: 1.3}, 400, disturbed=True)
    assert choose_tile(one, 309, 550, overlap=32, multiple=32, memory_budget=BIG, floor=448) == 0
    assert choose_tile(one, 618, 1100, overlap=32, multiple=32, memory_budget=BIG, floor=448) == 448
    assert choose_tile(one, 618, 1100, overlap=32, multiple=32, memory_budget=BIG, floor=0) == 256


def test_a_tile_below_the_floor_says_so(tmp_path, monkeypatch):
    """Memory forcing small tiles, or a --tile below the floor, is a note of the picture's result."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _fake_passes(monkeypatch)
    restorer = _tiny_restorer({"noise": 128, "haze": WHOLE_IMAGE_ONLY})
    monkeypatch.setattr(autotile, "available_memory", lambda: 2 * 100.0 * 160 * 160)  # 160 px passes fit
    pixels = np.random.default_rng(0).random((200, 260, 3), dtype=np.float32)
    _, info = restorer.restore(pixels)
    assert info["tile"] == 160
    assert info["notes"] == ["160 px tiles: memory held no larger; symunet matches its whole-image result "
                             "only untiled, so expect a lower quality"]
    monkeypatch.setattr(autotile, "available_memory", lambda: 64 * 2**30)
    assert "notes" not in restorer.restore(pixels)[1]  # the whole image fits: no note
    explicit = Restorer(restorer.model, replace(restorer.spec, min_tile={"noise": 192}), restorer.runtime,
                        TileOptions(128, 32, 1))
    assert explicit.restore(pixels)[1]["notes"] == [
        "--tile 128: symunet needs tiles of at least 192 px to match its whole-image result"]


def test_a_poisoned_cache_is_measured_again_and_the_whole_image_comes_back(tmp_path, monkeypatch):
    """A 128 px timing taken under load (1.33 s, 30 times the quiet 0.045 s) made every later run
    tile: the entry cannot be right (a smaller pass slower than larger ones), so it is measured again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    restorer = _tiny_restorer({"noise": 128})
    # measuring stopped at 256 px (a 384 px pass was predicted too long): 500 px whole is not among
    # the choices, and 192 px tiles look fastest
    poisoned = TileTimings({128: 1.33, 192: 0.06, 256: 0.20}, 400, complete=True)
    monkeypatch.setattr(autotile, "plausible", lambda timings: True)  # what the cache held before this check
    autotile.store(restorer.timing_key(), poisoned)
    assert _tiny_restorer({"noise": 128}).tile_size(500, 500) > 0  # the poisoned choice: tiles
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls: list[int] = []
    _fake_passes(monkeypatch, lambda side: 2.7e-6, calls)  # quiet: 0.045 s at 128 px, a flat cost per pixel
    assert _tiny_restorer({"noise": 128}).tile_size(500, 500) == 0
    assert calls and autotile.load(restorer.timing_key()).seconds[128] == pytest.approx(0.045, rel=0.02)


def test_a_cache_a_quiet_restore_beats_by_far_is_dropped(tmp_path, monkeypatch):
    """Timings all taken under load look plausible; the restore they chose runs 10 times faster
    than they predict, so the entry is dropped and the next picture measures again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    restorer = _tiny_restorer()
    slow = {128: 0.2, 192: 0.5, 256: 2.0, 384: 8.0, 512: 20.0}  # tiles predicted 2.5x faster than the whole
    autotile.store(restorer.timing_key(), TileTimings(slow, 100, complete=True))
    clock = iter(range(1000))
    monkeypatch.setattr(cpu_share, "sample", lambda: cpu_share.Sample(0.01 * next(clock), 0.0, 0.0))
    pixels = np.random.default_rng(0).random((500, 500, 3), dtype=np.float32)
    assert restorer.restore(pixels)[1]["tile"] > 0
    assert autotile.load(restorer.timing_key()) is None  # 0.01 s against seconds predicted: dropped
    _fake_passes(monkeypatch, lambda side: 1e-8)  # quiet: a flat cost per pixel
    assert restorer.restore(pixels)[1]["tile"] == 0
    assert autotile.load(restorer.timing_key()) is not None


def test_a_measurement_under_load_is_retried_and_not_cached_if_the_load_stays(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls: list[int] = []
    _fake_passes(monkeypatch, lambda side: 1e-6, calls, disturbed=lambda side: side >= 192)
    restorer = _tiny_restorer()
    assert restorer.tile_size(500, 500) >= 0
    assert restorer.tile_timings.disturbed and 384 not in restorer.tile_timings.seconds  # stopped at 192
    assert calls.count(192) == 1 + autotile.RETRIES  # run again while disturbed
    assert autotile.load(restorer.timing_key()) is None  # not kept for later runs
    calls.clear()
    restorer.tile_size(500, 500)
    assert calls == []  # this run goes on with what it measured: not measured per picture


def test_a_pass_disturbed_once_counts_its_quiet_rerun():
    seen: list[int] = []

    def forward(side):
        seen.append(side)
        first = seen.count(side) == 1
        return autotile.Pass(1.0 if first else 1e-8 * side * side, 0.0, disturbed=first)

    timings = measure(forward, multiple=8, up_to=256)
    assert not timings.disturbed and timings.seconds[256] == pytest.approx(1e-8 * 256 * 256)


def test_within_timing_noise_the_larger_tile_is_taken():
    flat = TileTimings({s: 1e-6 * s * s for s in (128, 192, 256)})
    # 600 px: sixteen 192 px windows and nine 256 px windows cover the same 589,824 pixels
    assert choose_tile(flat, 600, 600, overlap=32, multiple=8, memory_budget=BIG) == 256
    # 500 px: nine 192 px windows are 44 % fewer pixels than nine 256 px ones: a real gain
    assert choose_tile(flat, 500, 500, overlap=32, multiple=8, memory_budget=BIG) == 192
