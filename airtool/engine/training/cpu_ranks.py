"""One CPU training step spread over the cores as DDP ranks of one thread each.

With ``train.cpu_ranks`` above 1 (opt-in), ``airtool train`` on the CPU starts itself again
under ``torchrun`` (``torch.distributed.run``, gloo) as that many processes of one thread, each
computing its share of the step's batch: the same update as one process (DDP averages the
gradients; ``data.batch_size`` stays the step's whole batch, so sample *k* is the same), without
the joins of N threads over operators too small to split well. With the tuned allocator
(``engine/hardware/allocator.py``) two such ranks measured no faster than one two-thread process and took
more memory, so one process stays the default (docs/performance.md#training; the gain they had
before the allocator: docs/history.md#training).

``train.cpu_ranks: auto`` takes one rank per torch thread (``OMP_NUM_THREADS``; torch's default
is the usable cores), as many as divide the batch. Ranks started by hand with ``torchrun`` keep
``data.batch_size`` per process, as on GPUs: only a run whose ``cpu_ranks`` equals the world
size shares its batch.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from airtool.errors import ConfigError

if TYPE_CHECKING:
    from airtool.engine.training.config import TrainConfig


def planned_cpu_ranks(setting: int | str, batch: int, threads: int) -> int:
    """Ranks for a CPU run: ``auto`` = the most ranks, at most ``threads``, that divide ``batch``."""
    if setting == "auto":
        return max(r for r in range(1, max(1, min(threads, batch)) + 1) if batch % r == 0)
    ranks = int(setting)
    if ranks < 1 or batch % ranks:
        raise ConfigError(f"train.cpu_ranks={ranks} must be at least 1 and divide data.batch_size={batch}")
    return ranks


def shares_batch(cfg: TrainConfig, world: int, device_type: str) -> bool:
    """Whether this rank takes ``batch_size / world`` samples: a CPU run launched by ``cpu_ranks``."""
    return device_type == "cpu" and world > 1 and cfg.train.cpu_ranks == world


def per_rank_config(cfg: TrainConfig, world: int, device_type: str) -> TrainConfig:
    """``cfg`` with this rank's share of the batch when the ranks share it, else ``cfg`` itself."""
    if not shares_batch(cfg, world, device_type):
        return cfg
    return replace(cfg, data=replace(cfg.data, batch_size=cfg.data.batch_size // world))


def launch_command(argv: list[str], ranks: int) -> list[str]:
    """``torchrun`` arguments that run ``airtool ARGV`` as ``ranks`` ranks on this machine."""
    return ["--standalone", f"--nproc-per-node={ranks}", "--module", "airtool", *argv,
            "--set", f"train.cpu_ranks={ranks}"]


def launch(argv: list[str], ranks: int) -> int:
    """Run ``airtool ARGV`` as ``ranks`` one-thread ranks under torchrun; the first failed rank's
    exit status, or 0. The ranks' error lines are printed once each, in rank order."""
    import logging
    import tempfile

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    from airtool.report import RANK_ERRORS_ENV

    os.environ["OMP_NUM_THREADS"] = "1"  # also silences torchrun's note that it sets it
    for name in list(logging.root.manager.loggerDict):  # torchrun's own: each rank says what failed
        if name.startswith(("torch.distributed.elastic", "torch.distributed.run")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="airtool-rank-errors-") as errors:
        os.environ[RANK_ERRORS_ENV] = errors
        try:
            run(get_args_parser().parse_args(launch_command(argv, ranks)))
            status = 0
        except ChildFailedError as err:
            codes = [f.exitcode for f in err.failures.values()]
            status = next((c for c in codes if c > 0), 1)
        except SignalException as err:  # Ctrl-C or a kill: torchrun has stopped the ranks
            status = 128 + int(err.sigval)
        except KeyboardInterrupt:
            status = 130
        finally:
            del os.environ[RANK_ERRORS_ENV]
        lines = distinct_error_lines(errors)
    for line in lines:
        print(line, file=sys.stderr, flush=True)
    if status == 130 and not lines:
        print("airtool: interrupted", file=sys.stderr, flush=True)
    return status


def distinct_error_lines(folder: str) -> list[str]:
    """The lines the ranks wrote into ``folder`` (one file per rank), in rank order, each once."""
    from pathlib import Path

    seen: dict[str, None] = {}
    for path in sorted(Path(folder).glob("rank-*.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            seen.setdefault(line, None)
    return list(seen)


def under_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ
