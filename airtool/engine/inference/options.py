"""What a batch command is asked to do: ``BatchOptions`` (every batch command) and
``RestoreOptions`` (restore's model, weights and inference settings).

They are the API's vocabulary (``airtool.api`` names them), but the engine reads every field, so
they live here, beside the work that reads them, as ``EvalOptions`` and ``BenchOptions`` live
beside theirs: the engine never imports the api. A bad value is a ``UsageError`` when the options
are made, before any file is read or model loaded. Importing this module loads no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from airtool.engine.inference.untrained import check_choice
from airtool.errors import UsageError
from airtool.io.image import DEFAULT_MAX_PIXELS
from airtool.models import DEFAULT_MODEL
from airtool.models.spec import check_precision_name, check_threads


@dataclass(frozen=True)
class BatchOptions:
    """What every batch command shares: where outputs go and how existing ones are treated."""

    overwrite: bool = False
    suffix: str = ""
    format: str | None = None
    quality: int = 95
    recursive: bool = False
    dry_run: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    # Videos (see airtool.engine.inference.video): encoder, constant quality, pixel format, segment length.
    codec: str | None = None
    crf: int | None = None
    pix_fmt: str | None = None
    segment: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.quality <= 100:
            raise UsageError("--quality must be between 1 and 100")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise UsageError("--crf must be between 0 and 63")
        if not self.segment > 0:
            raise UsageError("--segment must be a positive number of seconds")


@dataclass(frozen=True)
class RestoreOptions(BatchOptions):
    model: str = DEFAULT_MODEL
    weights: str | None = None
    variant: str | None = None
    clip: str | None = None  # se-symunet's CLIP encoder folder (default: $AIRTOOL_CLIP)
    device: str = "auto"
    precision: str = "auto"
    tile: int | str = "auto"
    tile_overlap: int = 32
    batch_size: int = 1
    threads: int | None = None
    compile: bool = False
    # Pictures that look like a task the weights were not trained for (low light, blur):
    # "keep" writes them unchanged, "restore" restores them anyway (engine/inference/untrained.py).
    untrained: str = "keep"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.tile, str) and self.tile != "auto":
            raise UsageError(f"--tile must be auto, 0 or a size in pixels, not {self.tile!r}")
        if isinstance(self.tile, int) and self.tile < 0:
            raise UsageError("--tile must be >= 0")
        if self.tile_overlap < 0 or (isinstance(self.tile, int) and self.tile and self.tile_overlap >= self.tile):
            raise UsageError("--tile-overlap must be >= 0 and smaller than --tile")
        if self.batch_size < 1:
            raise UsageError("--batch-size must be >= 1")
        check_precision_name(self.precision)
        check_threads(self.threads)
        check_choice(self.untrained)
