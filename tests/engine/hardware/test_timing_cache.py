"""The per-machine JSON caches under ``$XDG_CACHE_HOME/airtool`` (tile timings, the CPU precision)."""

from __future__ import annotations

import json

from airtool.engine.hardware import timing_cache


def test_entries_round_trip_per_file_with_the_time_they_were_measured(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    timing_cache.store_entry("cpu | model", {"precision": "bf16"}, "a.json")
    timing_cache.store_entry("other", {"precision": "fp32"}, "a.json")
    entry = timing_cache.load_entry("cpu | model", "a.json")
    assert entry["precision"] == "bf16" and "measured" in entry
    assert timing_cache.load_entry("cpu | model", "b.json") is None  # each file its own
    timing_cache.drop_entry("cpu | model", "a.json")
    assert timing_cache.load_entry("cpu | model", "a.json") is None
    assert list(json.loads(timing_cache.cache_path("a.json").read_text())) == ["other"]


def test_a_damaged_cache_reads_as_empty_and_is_rewritten(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = timing_cache.cache_path("a.json")
    path.parent.mkdir(parents=True)
    for damaged in ("{not json", "[1, 2]", '{"key": 3}'):
        path.write_text(damaged)
        assert timing_cache.load_entry("key", "a.json") is None
    timing_cache.store_entry("key", {"seconds": 1.0}, "a.json")
    assert timing_cache.load_entry("key", "a.json")["seconds"] == 1.0


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path, monkeypatch):
    (tmp_path / "airtool").write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    timing_cache.store_entry("key", {"seconds": 1.0}, "a.json")  # no error: measured again next time
    assert timing_cache.load_entry("key", "a.json") is None
