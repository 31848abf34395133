"""ModelSpec: the smallest tile that keeps the whole-image quality, per task."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from airtool.models import get_spec, list_specs
from airtool.models.spec import WHOLE_IMAGE_ONLY
from airtool.models.weights import weights_dir
from airtool.tasks import SETTINGS


def test_the_floor_is_the_tasks_own_or_the_largest_any_task_needs():
    spec = replace(get_spec("identity"), min_tile={"noise": 128, "rain": 256})
    assert spec.tile_floor("noise") == 128 and spec.tile_floor("rain") == 256
    assert spec.tile_floor() == 256  # the picture's degradation is unknown: any of them may come in
    assert spec.tile_floor("blur") == 256  # a task nobody measured: the strictest measured
    assert replace(spec, min_tile={"noise": 128, "haze": WHOLE_IMAGE_ONLY}).tile_floor() == math.inf
    assert replace(spec, min_tile={}).tile_floor() == math.inf  # never measured: the whole image only


@pytest.mark.parametrize("spec", [s for s in list_specs() if s.weights], ids=lambda s: s.name)
def test_every_model_with_shipped_weights_states_its_smallest_safe_tile_for_their_tasks(spec):
    shipped = [setting for setting, name in spec.weights.items() if (weights_dir() / name).is_file()]
    if not shipped:
        pytest.skip(f"no shipped weights for {spec.name}")
    for setting in shipped:
        assert set(SETTINGS[setting]) <= set(spec.min_tile), (spec.name, setting)
    assert all(size == WHOLE_IMAGE_ONLY or size % spec.size_multiple == 0 for size in spec.min_tile.values())
