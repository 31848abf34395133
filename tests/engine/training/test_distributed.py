"""engine.distributed: leaving the process group only after a garbage collection."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch.distributed as td

from airtool.engine.training.distributed import Dist, end_distributed


class _Cycle:
    """Stands for what DDP's backward leaves in reference cycles."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def one_rank_group(tmp_path):
    td.init_process_group("gloo", store=td.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    yield
    if td.is_initialized():
        td.destroy_process_group()


def test_cyclic_garbage_is_collected_before_the_group_is_destroyed(one_rank_group, monkeypatch):
    """Ranks aborted at exit ("terminate called without an active exception", about one run in
    four) when DDP's cyclic garbage outlived the process group."""
    destroy, garbage_alive_at_destroy = td.destroy_process_group, []

    def recording_destroy(*args, **kwargs):
        garbage_alive_at_destroy.append(cycle() is not None)
        destroy(*args, **kwargs)

    monkeypatch.setattr(td, "destroy_process_group", recording_destroy)
    gc.disable()  # only end_distributed may collect
    try:
        cycle = weakref.ref(_Cycle())
        assert cycle() is not None  # a cycle outlives its last reference until a collection
        end_distributed(Dist(rank=0, world=2))
    finally:
        gc.enable()
    assert garbage_alive_at_destroy == [False]
    assert not td.is_initialized()


def test_a_single_process_has_no_group_to_end(monkeypatch):
    monkeypatch.setattr(td, "destroy_process_group", lambda: pytest.fail("no group to destroy"))
    end_distributed(Dist())
