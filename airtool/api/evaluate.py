"""``api.evaluate``: one model on one benchmark set, or on a whole suite, by a paper's protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airtool.api.progress import EventSink, Progress, progress_event

if TYPE_CHECKING:
    from airtool.engine.evaluation.evaluate import EvalOptions


def evaluate(options: EvalOptions, *, on_event: EventSink | None = None, progress: bool = False) -> Any:
    """An ``EvalReport`` for ``options.data``, or a ``SuiteReport`` when ``options.suite`` is set.
    Events: ``image`` (``done`` of ``total``, with the image's ``name``, ``psnr`` and ``ssim``)."""
    from airtool.engine.evaluation.evaluate import evaluate as run_one
    from airtool.engine.evaluation.evaluate import run_suite

    with Progress(on_event, progress, f"evaluating {options.model}") as sink:
        def on_image(done: int, total: int, row: Any) -> None:
            sink(progress_event("image", done, total, name=row.name, psnr=row.psnr, ssim=row.ssim))

        if options.suite is not None:
            return run_suite(options, on_image=on_image)
        return run_one(options, on_image=on_image)
