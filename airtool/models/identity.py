"""``identity``: returns its input. Gives the degraded-input baseline row in ``evaluate``."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from airtool.models.base import RestorationNet
from airtool.models.spec import ModelSpec, PrecisionPolicy


@dataclass(frozen=True)
class IdentityConfig:
    pass


class Identity(RestorationNet):
    def __init__(self, cfg: IdentityConfig) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


SPEC = ModelSpec(
    name="identity",
    title="Identity",
    paper="(baseline: no restoration)",
    code="airtool",
    build=Identity,
    variants={"paper": IdentityConfig(), "tiny": IdentityConfig()},
    params=0,
    size_multiple=1,
    precision=PrecisionPolicy(cpu=("fp32", "bf16", "fp16"), cuda=("fp32", "bf16", "fp16")),
    needs_weights=False,
)
