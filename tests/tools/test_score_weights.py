"""tools.score_weights: the 3-task table that decides whether trained weights ship."""

from __future__ import annotations

import json

import pytest

from tools.score_weights import SETS, main, with_average


def test_average_is_the_mean_over_the_sets():
    table = with_average({"a": [30.0, 0.9], "b": [27.0, 0.8]})
    assert table["avg"] == [28.5, 0.85]


@pytest.mark.slow
def test_identity_scores_every_set_and_writes_the_table(shared_data, tmp_path, capsys):
    out = tmp_path / "scores.json"
    main(["--model", "identity", "input=", "--data-root", str(shared_data), "--limit", "1", "--out", str(out)])
    table = json.loads(out.read_text())["promptir_3task"]["input"]
    assert list(table) == [column for column, _, _ in SETS] + ["avg"]
    assert table["CBSD68_s15"][0] > table["CBSD68_s25"][0] > table["CBSD68_s50"][0] > 10  # more noise, lower dB
    assert "| input |" in capsys.readouterr().out


@pytest.mark.slow
def test_a_failed_evaluation_names_the_weights_and_the_set(shared_data, tmp_path):
    with pytest.raises(SystemExit, match=r"score_weights: gone on \w+"):
        main(["--model", "daair", f"gone={tmp_path / 'missing.safetensors'}", "--data-root", str(shared_data),
              "--limit", "1", "--jobs", "1"])
