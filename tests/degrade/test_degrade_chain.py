"""Spec parsing, chain composition, per-file RNG and the JSON sidecar."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from airtool.degrade import CANONICAL_ORDER, Chain, file_rng, parse_spec, replay
from airtool.errors import UsageError


@pytest.mark.parametrize(
    ("op", "text", "preset", "fixed"),
    [
        ("noise", "25", None, {"sigma": 25.0}),
        ("noise", "15,gray", None, {"sigma": 15.0, "gray": True}),
        ("noise", "protocol=promptir,50", None, {"protocol": "promptir", "sigma": 50.0}),
        ("noise", "heavy", "heavy", {}),
        ("jpeg", "20", None, {"quality": 20}),
        ("rain", "medium", "medium", {}),
        ("rain", "light,angle=10", "light", {"angle": 10.0}),
        ("haze", "beta=1.0,A=0.9,depth=linear", None, {"beta": 1.0, "A": 0.9, "depth": "linear"}),
        ("haze", "a=0.8", None, {"A": 0.8}),
        ("blur", "motion:length=15,angle=30", None, {"kind": "motion", "length": 15.0, "angle": 30.0}),
        ("blur", "shake", None, {"kind": "shake"}),
        ("blur", "defocus:radius=4", None, {"kind": "defocus", "radius": 4.0}),
        ("blur", "gauss:sigma=2", None, {"kind": "gauss", "sigma": 2.0}),
        ("blur", "motion:heavy", "heavy", {"kind": "motion"}),
        ("blur", "light", "light", {}),
        ("lowlight", "ev=-4,gamma=1.2", None, {"ev": -4.0, "gamma": 1.2}),
        ("--rain", " Heavy ", "heavy", {}),
    ],
)
def test_parse_good_specs(op: str, text: str, preset: str | None, fixed: dict) -> None:
    spec = parse_spec(op, text)
    assert spec.preset == preset and dict(spec.fixed) == fixed


@pytest.mark.parametrize(
    ("op", "text", "message"),
    [
        ("rain", "dens=0.01", r"unknown key 'dens' \(valid keys: density, .*did you mean 'density'"),
        ("haze", "beta=9", r"beta=9 is out of range \[0, 5\]"),
        ("jpeg", "quality=0", r"quality=0 is out of range \[1, 100\]"),
        ("jpeg", "20.5", "not a valid integer"),
        ("noise", "sigma=abc", "not a valid number"),
        ("noise", "gray=maybe", "not a valid boolean"),
        ("rain", "extreme", "'extreme' is not a preset"),
        ("rain", "25", "'25' is not a preset"),
        ("rain", "light,heavy", "two presets"),
        ("rain", "angle=1,angle=2", "angle is given twice"),
        ("rain", "", "empty spec"),
        ("rain", "light,,angle=3", "empty item"),
        ("blur", "zoom:length=3", "unknown blur kind 'zoom'"),
        ("blur", "motion:radius=3", r"radius= does not apply to kind 'motion' \(its keys: length, angle\)"),
        ("haze", "depth=/no/such.png", "neither one of auto, linear, radial, uniform nor an image file"),
        ("haze", "near=6", "near=6 is larger than far=5"),
        ("noise", "25,protocol=promptir,gray", "promptir"),
        ("fog", "light", "unknown degradation 'fog'"),
    ],
)
def test_bad_specs_are_usage_errors_with_clear_messages(op: str, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_spec(op, text)


def test_usage_error_exit_code_is_2() -> None:
    with pytest.raises(UsageError) as info:
        parse_spec("rain", "bogus=1")
    assert info.value.exit_code == 2 and str(info.value).startswith("--rain")


def test_depth_file_spec(tmp_path: Path) -> None:
    path = tmp_path / "d.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(path)
    assert parse_spec("haze", f"medium,depth={path}").fixed["depth"] == str(path)


def test_chain_keeps_given_order_or_canonical() -> None:
    pairs = [("noise", "25"), ("haze", "light"), ("jpeg", "30")]
    assert Chain.parse(pairs).ops == ("noise", "haze", "jpeg")
    assert Chain.parse(pairs, order=CANONICAL_ORDER).ops == ("haze", "noise", "jpeg")
    assert Chain.parse({"rain": "light", "blur": "shake"}).ops == ("rain", "blur")
    with pytest.raises(UsageError, match="does not mention"):
        Chain.parse(pairs, order=("noise",))
    with pytest.raises(UsageError, match="no degradation"):
        Chain.parse([])


def test_chain_applies_ops_in_order() -> None:
    img = torch.rand(3, 32, 32)
    chain = Chain.parse([("haze", "medium"), ("noise", "10")])
    params = chain.sample(np.random.default_rng(0))
    from airtool.degrade import haze, noise

    expected = noise.apply(haze.apply(img, params[0]), params[1])
    assert torch.equal(chain.apply(img, params), expected)
    with pytest.raises(ValueError):
        chain.apply(img, params[:1])


def test_file_rng_depends_only_on_seed_and_relpath() -> None:
    def draw(seed: int, rel: str) -> np.ndarray:
        return file_rng(seed, rel).random(4)

    a = draw(0, "sub/a.png")
    draw(0, "other.png")  # other files in between change nothing
    assert np.array_equal(a, draw(0, "sub/a.png"))
    assert not np.array_equal(a, draw(1, "sub/a.png"))
    assert not np.array_equal(a, draw(0, "sub/b.png"))
    with pytest.raises(UsageError):
        file_rng(-1, "a.png")


def test_run_describe_and_replay_are_exact() -> None:
    img = torch.rand(3, 40, 48)
    ops = ("haze", "rain", "blur", "lowlight", "noise", "jpeg")
    chain = Chain.parse(list(zip(ops, ("light", "light", "shake", "light", "15", "60"), strict=True)))
    out, sidecar = chain.run(img, 7, "dir/x.png")
    out2, sidecar2 = chain.run(img, 7, "dir/x.png")
    assert torch.equal(out, out2) and sidecar == sidecar2
    text = json.dumps(sidecar)
    loaded = json.loads(text)
    from airtool._version import __version__

    assert loaded["airtool_version"] == __version__ and loaded["seed"] == 7 and loaded["relpath"] == "dir/x.png"
    assert [o["op"] for o in loaded["ops"]] == list(chain.ops)
    assert loaded["ops"][4]["params"]["sigma"] == 15.0 and loaded["ops"][4]["spec"] == "15"
    assert isinstance(loaded["ops"][2]["params"]["kernel"], list)
    assert torch.equal(replay(img, loaded), out)
    other, _ = chain.run(img, 7, "dir/y.png")
    assert not torch.equal(other, out)


def test_describe_without_seed() -> None:
    chain = Chain.parse([("jpeg", "40")])
    desc = chain.describe(chain.sample(np.random.default_rng(0)))
    assert desc["seed"] is None and desc["ops"][0]["params"] == {"quality": 40, "subsampling": "4:2:0"}


def test_video_frames_get_fresh_noise_and_keep_the_clip_params_unless_per_frame() -> None:
    chain = Chain.parse([("haze", "medium"), ("rain", "light"), ("blur", "shake"), ("lowlight", "light"), ("noise", "15"),
                         ("jpeg", "60")])
    clip = chain.sample(file_rng(3, "v/clip.mp4"))
    frames = [chain.frame_params(clip, 3, "v/clip.mp4", i) for i in range(4)]
    assert frames[1] == chain.frame_params(clip, 3, "v/clip.mp4", 1)  # reproducible from the sidecar's values
    for i, params in enumerate(frames):
        for op, clip_p, frame_p in zip(chain.ops, clip, params, strict=True):
            if op in ("rain", "lowlight", "noise"):  # per-pixel randomness: a new seed, everything else the clip's
                assert frame_p.seed != clip_p.seed and dataclasses.replace(frame_p, seed=clip_p.seed) == clip_p
                assert frame_p.seed not in {f[chain.ops.index(op)].seed for f in frames[:i]}
            else:  # haze, the blur kernel (its seed is the shake trajectory) and the JPEG quality
                assert frame_p == clip_p
    fresh = [chain.frame_params(clip, 3, "v/clip.mp4", i, per_frame=True) for i in range(2)]
    assert fresh[0][0] != fresh[1][0] and fresh[0][2].kernel != fresh[1][2].kernel
    pinned = Chain.parse([("noise", "15,seed=5")])
    assert pinned.frame_params(pinned.sample(file_rng(0, "a.mp4")), 0, "a.mp4", 9)[0].seed == 5  # a fixed seed stays
    video = chain.describe_video(clip, 3, "v/clip.mp4", frames=4)["video"]
    assert video["frames"] == 4 and video["fresh_each_frame"] == ["rain", "lowlight", "noise"]
