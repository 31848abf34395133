"""Write ``airtool/models/facts_table.py``: what ``airtool models`` lists about each model, taken
from the specs, so that listing never imports torch.

Run after adding a model or changing a spec:  python -m tools.gen_model_facts
tests/models/test_facts.py fails when the table and the specs differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "airtool" / "models" / "facts_table.py"


def generate() -> str:
    from airtool.models import get_spec, model_names
    from airtool.models.facts import spec_facts, table_source

    return table_source({name: spec_facts(get_spec(name)) for name in model_names()})


def main() -> int:
    TABLE.write_text(generate())
    print(f"wrote {TABLE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
