"""engine/inference/untrained.py: what restore does with a picture that looks like an untrained task."""

from __future__ import annotations

import numpy as np
import pytest

from airtool.engine.inference.untrained import UntrainedCheck, Verdict, check_choice
from airtool.errors import UsageError

DARK = np.kron(np.random.default_rng(0).random((16, 16)), np.ones((8, 8))).astype(np.float32)[..., None] * 0.15


def test_a_dark_picture_is_kept_when_the_weights_never_saw_low_light():
    verdict = UntrainedCheck(("blur", "lowlight"), "keep").judge(DARK)
    assert verdict.keep and list(verdict.signs) == ["lowlight"]
    assert verdict.facts() == {"untrained_signs": ["lowlight"], "untrained": "kept"}
    (note,) = verdict.notes()
    assert note.startswith("looks like lowlight (mean brightness 0.0") and "kept unchanged" in note
    assert "--untrained restore" in note


def test_restore_runs_the_model_anyway_and_still_says_so():
    verdict = UntrainedCheck(("blur", "lowlight"), "restore").judge(DARK)
    assert not verdict.keep and verdict.facts()["untrained"] == "restored"
    assert "restored anyway" in verdict.notes()[0]


def test_weights_trained_for_low_light_see_nothing_to_note():
    for tasks in ((), ("blur",), ("noise", "rain")):
        verdict = UntrainedCheck(tasks, "keep").judge(DARK)
        assert verdict == Verdict() and verdict.notes() == [] and verdict.facts() == {}


def test_an_unknown_choice_is_one_usage_error():
    check_choice("keep")
    with pytest.raises(UsageError, match="--untrained 'skip': choose keep or restore"):
        check_choice("skip")
