"""tools.bench_allocator: each setting in a process of its own, named in the table."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from tools.bench_allocator import main


@pytest.mark.slow
def test_one_round_measures_both_settings_each_in_its_own_process(tmp_path):
    printed, log = io.StringIO(), tmp_path / "rows.json"
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        main(["--model", "symunet-s", "--sizes", "32", "--threads", "1", "--repeats", "1", "--rounds", "1",
              "--json", str(log)])
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["setting"] for r in rows] == ["glibc", "tuned"]
    assert rows[0]["malloc"] == "default (AIRTOOL_MALLOC=default)"
    assert rows[1]["malloc"] in ("tuned", "default (not glibc)")
    assert all(r["ms"] > 0 and r["faults_per_pass"] >= 0 for r in rows)
    table = printed.getvalue()
    assert "| symunet-s | 32² | default (AIRTOOL_MALLOC=default) |" in table
    assert len(table.strip().splitlines()) == 4  # header, rule, two rows
