"""DaAIR: size, shapes, router loss, sparse routing, EMA controller, weight round-trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from airtool.errors import UsageError, WeightsError
from airtool.models.daair import SPEC, DaAIR, DaLe
from airtool.models.weights import load_model, load_state_strict, save_weights


@pytest.fixture
def tiny() -> DaAIR:
    torch.manual_seed(0)
    return SPEC.create("tiny")


def test_paper_param_count_matches_spec() -> None:
    model = SPEC.create("paper")
    n = sum(p.numel() for p in model.parameters())
    assert n == SPEC.params
    assert 5_500_000 <= n <= 6_500_000  # the paper's "6M"
    assert SPEC.config("paper5").num_tasks == 5



def test_router_loss_mixed_batch_has_router_gradient(tiny: DaAIR) -> None:
    x = torch.rand(3, 3, 32, 32)
    restored, aux = tiny.forward_train(x, x, torch.tensor([2, 0, 1]))
    assert restored.shape == x.shape
    loss = aux["router_ce"]
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    loss.backward()
    routers = [m for m in tiny.modules() if isinstance(m, DaLe)]
    assert all(d.router.fc.weight.grad is not None and d.router.fc.weight.grad.abs().sum() > 0 for d in routers)
    assert tiny.forward_train(x, x, None)[1] == {}


def test_router_loss_rejects_label_without_expert(tiny: DaAIR) -> None:
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(UsageError, match="paper5"):
        tiny.forward_train(x, x, torch.tensor([4]))  # lowlight on a 3-task model


def test_after_step_is_exact_ema_of_encoder_agnostic_expert(tiny: DaAIR) -> None:
    pairs = list(tiny.controller_sources())
    assert len(pairs) == sum(len(stage) for stage in tiny.decoders)
    for level, (controller, source) in zip((2, 1, 0), pairs, strict=True):  # deepest decoder first
        assert source is tiny.encoders[level][-1].dale.agnostic
        assert all(not p.requires_grad for p in controller.parameters())
        assert all(torch.equal(c, a) for c, a in zip(controller.parameters(), source.parameters(), strict=True))
    with torch.no_grad():  # stand-in for an optimiser step on the encoder
        for _, source in pairs:
            for p in source.parameters():
                p.add_(torch.randn_like(p))
    before = [[p.clone() for p in c.parameters()] for c, _ in pairs]
    tiny.after_step(0)
    beta = tiny.cfg.ema_beta
    for (controller, source), old in zip(pairs, before, strict=True):
        for p_c, p_old, p_a in zip(controller.parameters(), old, source.parameters(), strict=True):
            torch.testing.assert_close(p_c, beta * p_old + (1 - beta) * p_a, rtol=0, atol=1e-7)
            assert (p_c - p_a).norm() < (p_old - p_a).norm()


def test_controller_gets_no_gradient(tiny: DaAIR) -> None:
    restored, aux = tiny.forward_train(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.tensor([0, 1]))
    (restored.mean() + aux["router_ce"]).backward()
    for controller, _ in tiny.controller_sources():
        assert all(p.grad is None for p in controller.parameters())


class _FixedRouter(nn.Module):
    """Forces the decision: logits strongly favour ``choice[b]`` for sample b."""

    def __init__(self, choice: Tensor, num_tasks: int) -> None:
        super().__init__()
        self.logits = 20.0 * nn.functional.one_hot(choice, num_tasks).float()

    def forward(self, x: Tensor) -> Tensor:
        return self.logits


def test_forced_router_sends_each_sample_to_its_expert() -> None:
    torch.manual_seed(0)
    dale = DaLe(dim=8, rank=2, kernel=7, num_tasks=3)
    x = torch.randn(5, 8, 12, 12)
    choice = torch.tensor([2, 0, 2, 1, 0])
    dale.router = _FixedRouter(choice, 3)
    seen: dict[int, Tensor] = {}
    for i, expert in enumerate(dale.experts):
        expert.register_forward_hook(lambda m, inp, out, i=i: seen.__setitem__(i, inp[0]))
    with torch.no_grad():
        y, logits = dale(x)
        gate = logits.softmax(-1).max(-1).values
        for i in range(3):
            torch.testing.assert_close(seen[i], x[choice == i])  # each expert sees only its sub-batch
        for b in range(5):  # merged back in batch order, Eq. 3
            xb = x[b : b + 1]
            ref = dale.proj_up(gate[b] * dale.experts[int(choice[b])](xb) * dale.agnostic(xb))
            torch.testing.assert_close(y[b : b + 1], ref)


class _ChannelRouter(nn.Module):
    """Input-dependent top-1 decision (the first T channel means), recording what it chose."""

    def __init__(self, num_tasks: int, log: list[Tensor]) -> None:
        super().__init__()
        self.num_tasks, self.log = num_tasks, log

    def forward(self, x: Tensor) -> Tensor:
        logits = 50.0 * x.mean(dim=(2, 3))[:, : self.num_tasks]
        self.log.append(logits.argmax(-1))
        return logits


def test_mixed_batch_equals_per_sample_runs(tiny: DaAIR) -> None:
    log: list[Tensor] = []
    for dale in (m for m in tiny.modules() if isinstance(m, DaLe)):
        dale.router = _ChannelRouter(tiny.cfg.num_tasks, log)
    x = torch.rand(6, 3, 24, 24)
    with torch.no_grad():
        batched = tiny(x)
        assert any(len(c.unique()) > 1 for c in log)  # some block really split the batch
        single = torch.cat([tiny(x[b : b + 1]) for b in range(6)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)



def test_shipped_weights_path_round_trip(tiny: DaAIR, tmp_path: Path) -> None:
    """The way airtool ships weights: config in the metadata, strict load, controllers included."""
    path = tmp_path / "daair-tiny.safetensors"
    tiny.after_step(0)  # controllers are state too, not rebuilt from the encoder on load
    save_weights(tiny, path, model="daair", variant="tiny", config=dataclasses.asdict(tiny.cfg))
    loaded, spec = load_model("daair", path)
    assert spec is SPEC and loaded.cfg == tiny.cfg
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        assert torch.equal(tiny.eval()(x), loaded(x))
    state = tiny.state_dict()
    del state["decoders.0.0.controller.dw.weight"]
    with pytest.raises(WeightsError, match="controller"):
        load_state_strict(SPEC.create("tiny"), state, "test")


def test_bf16_autocast_forward_is_finite(tiny: DaAIR) -> None:
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        y = tiny(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    dale = tiny.encoders[0][0].dale
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        _, logits = dale(torch.rand(2, dale.router.fc.in_features, 8, 8))
    assert logits.dtype == torch.float32  # routing decisions are not made in bf16
