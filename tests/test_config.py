"""YAML -> dataclass loading: dotted-path errors, --set overrides, the shipped presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from airtool.config import apply_overrides, from_dict, load_yaml, parse_override, to_dict, to_yaml
from airtool.errors import ConfigError


@dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    name: Literal["adam", "adamw"] = "adam"


@dataclass(frozen=True)
class Loop:
    steps: int
    optim: Optim = field(default_factory=Optim)
    clip: float | None = None
    tags: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Root:
    name: str
    train: Loop
    sizes: tuple[int, ...] = ()


def test_nested_build_and_round_trip():
    cfg = from_dict(Root, {"name": "x", "train": {"steps": 3, "optim": {"lr": 1, "betas": [0.8, 0.9]}}, "sizes": [1, 2]})
    assert cfg.train.optim.lr == 1.0 and isinstance(cfg.train.optim.lr, float)
    assert cfg.train.optim.betas == (0.8, 0.9) and cfg.sizes == (1, 2)
    assert from_dict(Root, yaml.safe_load(to_yaml(cfg))) == cfg


def test_unknown_key_names_its_dotted_path():
    with pytest.raises(ConfigError, match=r"^train\.optim\.lr_base: unknown key$"):
        from_dict(Root, {"name": "x", "train": {"steps": 1, "optim": {"lr_base": 1.0}}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "train": {"steps": "many"}}, r"train\.steps: expected int, got str 'many'"),
        ({"name": "x", "train": {"steps": True}}, r"train\.steps: expected int, got bool"),
        ({"name": "x", "train": {"steps": 1, "optim": {"name": "sgd"}}}, r"train\.optim\.name: 'sgd' is not one of"),
        ({"name": "x", "train": {"steps": 1, "optim": {"betas": [0.9]}}}, r"train\.optim\.betas: expected 2 items"),
        ({"name": "x", "train": {"steps": 1}, "sizes": [1, "a"]}, r"sizes\[1\]: expected int"),
        ({"name": "x"}, r"train: required key is missing"),
        ({"name": "x", "train": [1]}, r"train: expected a mapping"),
    ],
)
def test_type_errors_name_the_path(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Root, data)


def test_float_accepts_yaml_1_1_exponent_strings():
    # PyYAML reads "1e-4" (no dot) as a string; float fields accept it.
    cfg = from_dict(Root, {"name": "x", "train": {"steps": 1, "optim": {"lr": yaml.safe_load("1e-4")}}})
    assert cfg.train.optim.lr == pytest.approx(1e-4)


def test_set_overrides_are_parsed_as_yaml_and_revalidated():
    cfg = from_dict(Root, {"name": "x", "train": {"steps": 1}})
    out = apply_overrides(cfg, ["train.steps=20", "train.optim.betas=[0.5, 0.6]", "train.clip=null", "train.tags.a=2"])
    assert out.train.steps == 20 and out.train.optim.betas == (0.5, 0.6) and out.train.clip is None
    assert out.train.tags == {"a": 2.0}
    assert cfg.train.steps == 1  # frozen input untouched
    assert parse_override("a.b=__import__('os')") == (["a", "b"], "__import__('os')")  # a string, never run


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("train.steps=abc", r"train\.steps: expected int, got str 'abc'"),
        ("train.steps=[1,", r"--set 'train\.steps=\[1,': bad value"),
        ("train.optim.lr_base=1", r"train\.optim\.lr_base: unknown key"),
        ("train.steps", r"expected KEY\.PATH=VALUE"),
        ("train..steps=1", r"expected KEY\.PATH=VALUE"),
        ("name.sub=1", r"name\.sub: cannot set inside a str"),
    ],
)
def test_bad_set_values(item, message):
    cfg = from_dict(Root, {"name": "x", "train": {"steps": 1}})
    with pytest.raises(ConfigError, match=message):
        apply_overrides(cfg, [item])


def test_load_yaml_reports_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrain: {steps: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: line \d+ invalid YAML"):
        load_yaml(bad, Root)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("name: x\ntrain: {steps: 1, optim: {lr_base: 2}}\n")
    with pytest.raises(ConfigError, match=r"unknown\.yaml: train\.optim\.lr_base: unknown key"):
        load_yaml(unknown, Root)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_yaml(tmp_path / "missing.yaml", Root)


def test_every_shipped_preset_loads_and_round_trips():
    from airtool.engine.train import TrainConfig, load_train_config, preset_names

    names = preset_names()
    assert {"cpu-small", "symunet-aio3", "symunet-aio5", "anyir-aio3", "daair-aio5", "ndr-restore-aio3"} <= set(names)
    for name in names:
        cfg = load_train_config(name)
        assert cfg.name == name
        assert from_dict(TrainConfig, yaml.safe_load(to_yaml(cfg))) == cfg
        assert all(not any(s in src.path for s in ("CBSD68", "Rain100L", "SOTS")) for src in cfg.data.sources)


def test_preset_recipes_follow_the_papers():
    from airtool.engine.train import load_train_config

    sym = load_train_config("symunet-aio3")
    assert (sym.train.optim.name, sym.train.optim.lr, sym.train.optim.weight_decay) == ("adamw", 1e-3, 1e-3)
    assert (sym.train.steps, sym.train.schedule.min_lr, sym.train.grad_clip, sym.seed) == (300000, 1e-7, 0.01, 42)
    assert (sym.train.loss.fft, sym.train.loss.fft_kind, sym.data.crop) == (0.1, "fft2", 128)
    anyir = load_train_config("anyir-aio3")
    assert anyir.train.loss.fft_kind == "rfft2" and anyir.data.augment == "promptir" and anyir.data.batch_size == 32
    ndr = load_train_config("ndr-restore-aio3")
    assert ndr.train.schedule.milestones == (200000, 400000, 600000, 800000) and ndr.train.grad_clip == 10.0
    assert all(s.noise == "float" for s in ndr.data.sources if s.task == "noise")


def test_unknown_preset_lists_the_available_ones():
    from airtool.engine.train import load_train_config

    with pytest.raises(ConfigError, match=r"unknown training config 'symunet-aio9'; presets: .*cpu-small.*symunet-aio3"):
        load_train_config("symunet-aio9")


def test_preset_overrides_and_to_dict():
    from airtool.engine.train import load_train_config

    cfg = load_train_config("cpu-small", ["train.steps=7", "data.root=/elsewhere", "train.optim.lr=1e-4"])
    assert (cfg.train.steps, cfg.data.root, cfg.train.optim.lr) == (7, "/elsewhere", 1e-4)
    assert to_dict(cfg)["data"]["sources"][0]["path"] == "train/Train400"
