"""What a restore's outputs are made with: the recipe, the provenance folder, the refusal of
outputs another recipe made, and what a video's kept segments are compared on."""

from __future__ import annotations

import os

import pytest

from airtool.engine.inference.options import RestoreOptions
from airtool.engine.inference.restore_recipe import (
    about,
    describe_weights,
    file_id,
    provenance_for,
    recipe_for,
    refuse_other_recipes,
    video_recipe,
)
from airtool.errors import UsageError, WeightsError
from airtool.io.paths import plan


def _made(tmp_path, names, recipe):
    """Outputs ``names`` in ``tmp_path/out``, recorded as made by ``recipe``; the run's plan."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir(), out.mkdir()
    for name in names:
        (src / name).write_bytes(b"in")
    work = plan([str(src)], str(out))
    provenance = provenance_for(work, str(out))
    for job in work.jobs:
        tmp = job.dst.with_name("." + job.dst.name + ".tmp")
        tmp.write_bytes(b"out")
        provenance.record(tmp, job.dst, recipe)
        os.replace(tmp, job.dst)
    return work, provenance


def test_outputs_of_the_same_recipe_pass_and_of_another_are_refused_naming_the_difference(tmp_path):
    before = recipe_for(RestoreOptions(model="identity"), None, "keep")
    work, provenance = _made(tmp_path, ["a.png", "b.png"], before)
    refuse_other_recipes(provenance, work, before)
    now = recipe_for(RestoreOptions(model="identity", tile=0), None, "keep")
    with pytest.raises(UsageError) as err:
        refuse_other_recipes(provenance, work, now)
    assert str(err.value).endswith(
        "a.png and 1 more outputs were made with tile auto; this run would use tile 0. Pass --overwrite to redo "
        "them, or choose another output folder")


def test_stdout_has_no_provenance_and_a_named_file_uses_its_folders(tmp_path):
    (tmp_path / "a.png").write_bytes(b"in")
    assert provenance_for(plan([str(tmp_path / "a.png")], "-"), "-") is None
    named = str(tmp_path / "out" / "x.png")
    assert provenance_for(plan([str(tmp_path / "a.png")], named), named).folder == tmp_path / "out"


def test_a_model_without_weights_is_described_as_none_and_missing_weights_fail_as_loading_would(tmp_path):
    assert describe_weights(RestoreOptions(model="identity")) is None
    assert about("identity", None) == {"model": "identity", "weights": None, "weights_sha256": None, "tasks": [],
                                       "untrained_tasks": []}
    with pytest.raises(WeightsError, match="weights file not found"):
        describe_weights(RestoreOptions(model="symunet", weights=str(tmp_path / "none.safetensors")))


def test_a_replaced_weights_file_changes_the_video_recipe(tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"one")
    first = video_recipe(RestoreOptions(model="symunet", weights=str(weights)))
    weights.write_bytes(b"other")
    os.utime(weights, ns=(1, 1))
    assert video_recipe(RestoreOptions(model="symunet", weights=str(weights))) != first
    assert file_id(None) is None and file_id(str(tmp_path / "gone")) == str(tmp_path / "gone")
    assert file_id(str(weights)) == [os.path.abspath(weights), 5, 1]
