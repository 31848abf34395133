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
    from airtool.engine.device import resolve_device

    device = resolve_device(name)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    return device


def hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        from airtool.engine.cpuinfo import read_cpu

        cpu = read_cpu()
        family = f" ({cpu.family})" if cpu.family else ""
        bf16 = ", AVX512-BF16" if "avx512_bf16" in cpu.vector else ""
        threads = torch.get_num_threads()
        what = f"{cpu.model}{family}{bf16} CPU, {threads} thread{'s' if threads != 1 else ''}"
    return f"{world}× {what}, torch {torch.__version__}"
