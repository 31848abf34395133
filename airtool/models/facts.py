"""The facts ``airtool models`` lists about each model, without importing torch.

Each model's ``SPEC`` lives beside its network, so reading it imports torch (seconds). The
facts that listing needs are kept in ``facts_table.py``, written from the specs by
``python -m tools.gen_model_facts``; ``tests/models/test_facts.py`` fails when the table and the
specs differ. A model missing from the table (a new one) is read from its spec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airtool.models.spec import ModelSpec


def spec_facts(spec: ModelSpec) -> dict[str, Any]:
    """What ``airtool models --json`` says about ``spec`` (all but the weights found on disk)."""
    return {
        "name": spec.name, "title": spec.title, "params": spec.params, "paper": spec.paper, "code": spec.code,
        "size_multiple": spec.size_multiple, "precision_cpu": list(spec.precision.allowed("cpu")),
        "precision_cuda": list(spec.precision.allowed("cuda")), "variants": sorted(spec.variants),
        "weights_names": list(spec.weights.values()), "needs_clip": spec.needs_clip,
    }


def model_facts(name: str) -> dict[str, Any]:
    """The facts of model ``name``: from the table, else from its spec."""
    from airtool.models.facts_table import FACTS

    if name in FACTS:
        return FACTS[name]
    from airtool.models import get_spec

    return spec_facts(get_spec(name))


def table_source(facts: dict[str, dict[str, Any]]) -> str:
    """``facts_table.py`` for ``facts`` (model name -> ``spec_facts``)."""
    import pprint

    body = pprint.pformat(facts, width=110, sort_dicts=False)
    return (
        '"""Written by ``python -m tools.gen_model_facts`` from the models\' specs: do not edit.\n\n'
        'See ``airtool/models/facts.py``."""\n\n'
        "from __future__ import annotations\n\n"
        "from typing import Any\n\n"
        f"FACTS: dict[str, dict[str, Any]] = {body}\n"
    )
