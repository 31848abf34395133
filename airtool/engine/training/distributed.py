"""Where a training run executes: its rank under ``torchrun`` (DDP when WORLD_SIZE > 1), its
device, and the one-line hardware description that logs and manifests record."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """DDP when started by torchrun (WORLD_SIZE > 1), otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as td

    if not td.is_initialized():
        td.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return Dist(td.get_rank(), td.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def end_distributed(dist: Dist) -> None:
    """Leave the process group, after a garbage collection.

    Ranks that had trained under DDP (gloo, torch 2.13) aborted at exit with "terminate called
    without an active exception" in about one run of four, after their work had finished: 18 of
    70 runs of a two-rank DDP script, and one CI run of ``bench_train --ranks 2``. What DDP's
    backward leaves in reference cycles was then torn down with the interpreter. Collecting it
    before the group is destroyed ended the aborts: 0 of 75 runs, 0 of 15 of ``bench_train``.
    """
    if dist.world <= 1:
        return
    import gc

    import torch.distributed as td

    gc.collect()
    if td.is_initialized():
        td.destroy_process_group()


def from_main(values: Sequence[float], dist: Dist, device: torch.device) -> list[float]:
    """Rank 0's ``values`` on every rank.

    Decisions read from a clock (the planned end of a run, its time limit) differ from rank to rank;
    taken apart, one rank would leave the loop while the others wait forever in DDP's next
    gradient all-reduce. So rank 0 decides and the others follow.
    """
    if dist.world <= 1:
        return list(values)
    import torch.distributed as td

    shared = torch.tensor(list(values), dtype=torch.float64, device=device)
    td.broadcast(shared, src=0)
    return shared.tolist()


def select_device(name: str) -> torch.device:
    """``train.device`` resolved; a CUDA device with an index becomes the current one."""
    from airtool.engine.hardware.device import resolve_device

    device = resolve_device(name)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    return device


def hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        from airtool.engine.hardware.cpuinfo import read_cpu

        cpu = read_cpu()
        family = f" ({cpu.family})" if cpu.family else ""
        bf16 = ", AVX512-BF16" if "avx512_bf16" in cpu.vector else ""
        threads = torch.get_num_threads()
        what = f"{cpu.model}{family}{bf16} CPU, {threads} thread{'s' if threads != 1 else ''}"
    return f"{world}× {what}, torch {torch.__version__}"
