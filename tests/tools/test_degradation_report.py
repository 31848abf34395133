"""tools/degradation_report.py: which sets it runs."""

from __future__ import annotations

from pathlib import Path

from tools.degradation_report import _sets


def test_sets_filter_by_first_word_and_skip_making_noisy_images(tmp_path: Path):
    chosen = _sets(tmp_path / "data", tmp_path / "work", {"haze", "rain"})
    assert list(chosen) == ["rain (Rain100L inputs)", "haze (SOTS inputs)"]
    assert chosen["haze (SOTS inputs)"] == tmp_path / "data" / "SOTS_outdoor_mini" / "input"
    assert not (tmp_path / "work").exists()  # the sigma-25 CBSD68 copy is made only for "noise"
