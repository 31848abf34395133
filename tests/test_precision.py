"""The one table of precision names (airtool/precision.py) and its users."""

from __future__ import annotations

import pytest
import torch

from airtool import precision as P


@pytest.mark.parametrize(("name", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_each_name_maps_to_its_dtype(name: str, dtype: torch.dtype):
    assert P.dtype_of(name) is dtype
    assert P.is_reduced(name) is (name != "fp32")


def test_unknown_name_is_refused_naming_the_valid_ones():
    with pytest.raises(KeyError, match="fp32, bf16, fp16"):
        P.dtype_of("int8")


def test_autocast_runs_bf16_on_cpu_and_fp32_as_is():
    a = torch.randn(8, 8)
    with P.autocast("cpu", "bf16"):
        assert (a @ a).dtype is torch.bfloat16
    for plain in ("fp32", "none"):
        with P.autocast("cpu", plain):
            assert (a @ a).dtype is torch.float32


def test_users_of_precision_names_share_the_table():
    """restore's runtime, weights export and training all take their words from PRECISIONS."""
    from airtool.engine.hardware.device import Runtime
    from airtool.engine.training.train import LoopConfig

    assert Runtime(torch.device("cpu"), "bf16").dtype is torch.bfloat16
    import typing

    allowed = set(typing.get_args(typing.get_type_hints(LoopConfig)["precision"]))
    assert allowed == {"auto", *P.PRECISIONS}
