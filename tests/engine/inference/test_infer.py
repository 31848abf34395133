"""Restorer: grey handling, OOM back-off, NaN fallback to fp32, precision policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from airtool.engine.hardware.device import Runtime, resolve_device
from airtool.engine.hardware.precision import resolve_precision
from airtool.engine.inference.infer import Restorer, TileOptions
from airtool.errors import DeviceError
from airtool.models import get_spec
from airtool.models.spec import PrecisionPolicy
from tests.conftest import gradient_image


class _Brighten(nn.Module):
    def forward(self, x):
        return x * 0.5 + 0.25


class _NeedsSmallTiles(nn.Module):
    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.calls = []

    def forward(self, x):
        self.calls.append(tuple(x.shape[-2:]))
        if x.shape[-1] * x.shape[-2] > self.limit:
            raise torch.OutOfMemoryError("simulated")
        return x


class _NanInBf16(nn.Module):
    def forward(self, x):
        if torch.is_autocast_enabled("cpu"):
            return torch.full_like(x, float("nan"))
        return x


def _restorer(model, tile="auto", precision="fp32"):
    spec = get_spec("identity")
    return Restorer(model, spec, Runtime(torch.device("cpu"), precision), TileOptions(tile, 16, 2))


def test_grey_in_grey_out():
    out = _restorer(_Brighten())(gradient_image(20, 30, channels=1))
    assert out.shape == (20, 30, 1)
    assert np.allclose(out, gradient_image(20, 30, channels=1) * 0.5 + 0.25, atol=1e-6)


def test_out_of_memory_halves_the_tile_and_retries():
    model = _NeedsSmallTiles(limit=128 * 128)
    restorer = _restorer(model, tile=512)
    image = gradient_image(300, 260)
    out = restorer(image)
    assert np.allclose(out, image, atol=1e-6)
    # whole image first (512 > image), then 150 px, then 75 px tiles
    assert model.calls[0] == (300, 260) and restorer.last_tile == 75


def test_out_of_memory_below_minimum_is_a_clear_error():
    with pytest.raises(DeviceError, match="out of memory"):
        _restorer(_NeedsSmallTiles(limit=16))(gradient_image(200, 200))


def test_non_finite_bf16_output_is_recomputed_in_fp32():
    restorer = _restorer(_NanInBf16(), precision="bf16")
    image = gradient_image(24, 24)
    out = restorer(image)
    assert restorer.fp32_retries == 1 and np.allclose(out, image, atol=1e-6)


CPU = torch.device("cpu")


def test_precision_policy_is_enforced():
    policy = PrecisionPolicy(cpu=("fp32",))
    with pytest.raises(DeviceError, match="not validated"):
        resolve_precision(policy, CPU, "bf16")
    assert resolve_precision(policy, CPU, "auto") == "fp32"
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda:3")


def test_compile_failure_is_a_device_error_naming_the_option(monkeypatch) -> None:
    import torch

    from airtool.engine.hardware.device import Runtime
    from airtool.engine.inference import infer
    from airtool.errors import DeviceError

    class CppCompileError(RuntimeError):
        __module__ = "torch._inductor.exc"

    def broken(x):
        raise CppCompileError("no C++ compiler found\nmore detail")

    monkeypatch.setattr(torch, "compile", lambda model, **kw: broken)
    network = infer.compile_model(torch.nn.Identity(), Runtime(torch.device("cpu"), "fp32"))
    with pytest.raises(DeviceError, match=r"--compile failed \(CppCompileError: no C\+\+ compiler found\)"):
        network(torch.zeros(1, 3, 8, 8))


def test_other_errors_inside_a_compiled_model_are_not_relabelled(monkeypatch) -> None:
    import torch

    from airtool.engine.hardware.device import Runtime
    from airtool.engine.inference import infer

    def broken(x):
        raise ValueError("a bug in the model")

    monkeypatch.setattr(torch, "compile", lambda model, **kw: broken)
    network = infer.compile_model(torch.nn.Identity(), Runtime(torch.device("cpu"), "fp32"))
    with pytest.raises(ValueError, match="a bug"):
        network(torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize("native, expected", [("1", "bf16"), ("0", "fp32")])
def test_auto_cpu_bf16_only_where_the_cpu_has_bf16_hardware(monkeypatch, native, expected):
    monkeypatch.setenv("AIRTOOL_CPU_BF16", native)
    policy = PrecisionPolicy(auto_cpu="bf16")
    assert resolve_precision(policy, CPU, "auto") == expected
    assert resolve_precision(policy, CPU, "bf16") == "bf16"  # asked for explicitly: always honoured


def test_grey_float_picture_passes_an_identity_model_bit_exactly():
    """Averaging the three channels back to grey in float32 moved float TIFF values by an ulp."""
    image = np.random.default_rng(3).random((7, 5, 1), dtype=np.float32)
    out = _restorer(get_spec("identity").create())(image)
    assert out.dtype == np.float32 and np.array_equal(out, image)


@pytest.mark.parametrize("shape", [(1, 1, 3), (2000, 3, 3), (3, 2000, 1)])
@pytest.mark.parametrize("tile", [0, 64])
def test_one_pixel_and_thin_strips_through_a_real_network(shape, tile):
    """SymUNet pads to a multiple of 32: reflect padding cannot, so tiny inputs must still work."""
    spec = get_spec("symunet")
    model = spec.create("tiny")
    restorer = Restorer(model, spec, Runtime(torch.device("cpu"), "fp32"), TileOptions(tile, 16, 4))
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = restorer(image)
    assert out.shape == shape and np.isfinite(out).all() and 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("dtype, channels", [(np.uint8, 3), (np.uint16, 3), (np.uint8, 1)])
def test_integer_pixels_give_what_the_float_path_then_rounding_gives(dtype, channels):
    """8/16-bit pictures stay in their dtype: windows are converted to float one at a time and
    bands rounded back, with the same values as a float picture restored then encoded."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1), nn.Sigmoid())
    levels = np.iinfo(dtype).max
    pixels = np.random.default_rng(1).integers(0, levels + 1, (150, 90, channels)).astype(dtype)
    restorer = _restorer(net, tile=64)
    out = restorer(pixels)
    expected = restorer(pixels.astype(np.float32) / levels)
    assert out.dtype == dtype and out.shape == pixels.shape
    assert np.array_equal(out, np.rint(expected.astype(np.float64) * levels).astype(dtype))
    assert not np.array_equal(out, pixels)  # the network did something


class _Interrupt(Exception):
    pass


def _stop_after(k: int):
    """A progress callback that interrupts the run once ``k`` tiles are done."""
    def on_tile(done: int, total: int) -> None:
        if done >= k:
            raise _Interrupt
    return on_tile


@pytest.mark.parametrize("dtype, channels, batch, k", [
    (np.uint8, 3, 1, 1), (np.uint8, 3, 1, 7), (np.uint16, 1, 2, 6), (np.float32, 3, 3, 9), (np.uint8, 3, 1, 15)])
def test_an_interrupted_tiled_restore_resumes_from_its_kept_tiles_to_the_same_bytes(tmp_path, dtype, channels, batch, k):
    """Interrupted after ``k`` of 16 tiles, then run again: the kept tiles are not computed again,
    and the picture is bit-for-bit the one an uninterrupted run gives."""
    from airtool.io.tile_resume import TileStore

    spec = get_spec("symunet")
    model = spec.create("tiny")
    restorer = Restorer(model, spec, Runtime(torch.device("cpu"), "fp32"), TileOptions(64, 16, batch))
    rng = np.random.default_rng(2)
    pixels = rng.random((170, 180, channels), dtype=np.float32)
    if dtype != np.float32:
        pixels = np.rint(pixels * np.iinfo(dtype).max).astype(dtype)
    expected = restorer(pixels)
    store = TileStore(tmp_path / ".out.png.airtool-tiles")
    with pytest.raises(_Interrupt):
        restorer.restore(pixels, on_tile=_stop_after(k), resume=store)
    assert any(store.folder.glob("w*.bin"))
    seen: list[tuple[int, int]] = []
    out, info = restorer.restore(pixels, on_tile=lambda done, total: seen.append((done, total)), resume=store)
    assert out.dtype == expected.dtype and np.array_equal(out, expected)
    assert seen[0] == (k // batch * batch, 16) and info["resumed_tiles"] == seen[0][0]
    assert info["notes"] == ["--tile 64: symunet needs tiles of at least 512 px to match its whole-image result",
                             f"resumed: {seen[0][0]} of 16 tiles kept from an interrupted run"]
    assert sorted(p.name for p in store.folder.iterdir()) == ["key.json", "rows.bin"]  # no window needed any more


def test_kept_tiles_of_another_picture_or_setting_are_not_used(tmp_path):
    from airtool.io.tile_resume import TileStore

    spec = get_spec("symunet")
    restorer = Restorer(spec.create("tiny"), spec, Runtime(torch.device("cpu"), "fp32"), TileOptions(64, 16, 1))
    pixels = np.random.default_rng(2).random((150, 150, 3), dtype=np.float32)
    store = TileStore(tmp_path / "kept")
    with pytest.raises(_Interrupt):
        restorer.restore(pixels, on_tile=_stop_after(5), resume=store)
    other = pixels.copy()
    other[0, 0, 0] = 1 - other[0, 0, 0]
    seen: list[int] = []
    out, info = restorer.restore(other, on_tile=lambda done, total: seen.append(done), resume=store)
    assert seen[0] == 0 and "resumed_tiles" not in info and np.array_equal(out, restorer(other))
    with pytest.raises(_Interrupt):
        restorer.restore(pixels, on_tile=_stop_after(5), resume=store)
    wider = Restorer(restorer.model, spec, restorer.runtime, TileOptions(64, 24, 1))
    seen.clear()
    assert np.array_equal(wider.restore(pixels, on_tile=lambda d, t: seen.append(d), resume=store)[0], wider(pixels))
    assert seen[0] == 0  # another overlap: started afresh
