"""``api.restore``: restore images and videos from files, folders or stdin.

Thin on purpose: it picks the progress reporter and hands the run to the engine
(``airtool.engine.inference.restore_run``), where the checks, the provenance and the stages live.
Nothing here prints or reads argv: progress goes to the ``Reporter`` passed in (or, with
``progress=True``, a tqdm bar), and the result is a ``RunReport``. torch is imported only once a
model loads.
"""

from __future__ import annotations

from airtool.api.progress import default_reporter
from airtool.engine.inference.options import RestoreOptions
from airtool.report import Reporter, RunReport

DEFAULTS = RestoreOptions()  # frozen: one shared default is safe


def restore(inputs: list[str], output: str, options: RestoreOptions = DEFAULTS, reporter: Reporter | None = None,
            progress: bool = False) -> RunReport:
    """Restore images from files, folders or stdin (``-``) into ``output``; ``progress``: a tqdm
    bar over the files when no ``reporter`` is given.

    An existing output counts as done only if the folder's provenance record says the same
    recipe (model, weights, options) made it; one made by another is refused before any work
    unless ``overwrite`` (``airtool.io.provenance``). A picture that looks like low light or blur
    where the weights were not trained for it is written unchanged, or with ``untrained="restore"``
    restored anyway, and gets a note either way (``engine/inference/untrained.py``).
    """
    from airtool.engine.inference.restore_run import run_restore

    return run_restore(inputs, output, options, reporter or default_reporter(progress, "restoring"))
