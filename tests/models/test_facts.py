"""models/facts.py: the table ``airtool models`` reads instead of importing torch matches the specs."""

from __future__ import annotations

from airtool.models import get_spec, model_names
from airtool.models.facts import model_facts, spec_facts, table_source
from airtool.models.facts_table import FACTS


def test_the_facts_table_matches_every_spec():
    for name in model_names():
        assert FACTS.get(name) == spec_facts(get_spec(name)), f"{name}: run python -m tools.gen_model_facts"
    assert set(FACTS) == set(model_names()), "run python -m tools.gen_model_facts"


def test_the_table_source_is_what_the_generator_writes():
    namespace: dict = {}
    exec(table_source(FACTS), namespace)  # noqa: S102 (our own generated source)
    assert namespace["FACTS"] == FACTS


def test_a_model_missing_from_the_table_is_read_from_its_spec(monkeypatch):
    from airtool.models import facts_table

    monkeypatch.setattr(facts_table, "FACTS", {})
    assert model_facts("identity") == spec_facts(get_spec("identity"))
