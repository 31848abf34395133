"""YAML -> dataclass loading: dotted-path errors, --set overrides, the shipped presets and their ``base:``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from airtool.config import (
    apply_overrides,
    from_dict,
    load_yaml,
    merge_trees,
    parse_override,
    to_dict,
    to_yaml,
)
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


PRESETS = Path(__file__).resolve().parents[1] / "airtool" / "configs" / "train"


def test_every_shipped_preset_loads_and_round_trips(tmp_path: Path):
    from airtool.engine.training.train import TrainConfig, load_train_config, preset_names

    names = preset_names()
    assert {"cpu-small", "symunet-aio3", "symunet-aio5", "anyir-aio3", "daair-aio5", "ndr-restore-aio3"} <= set(names)
    assert {f"{m}-gpu-aio3" for m in ("symunet", "daair", "anyir", "ndr-restore")} <= set(names)  # gpu_train.sh
    for name in names:
        cfg = load_train_config(name)
        assert cfg.name == name
        assert from_dict(TrainConfig, yaml.safe_load(to_yaml(cfg))) == cfg
        assert all(not any(s in src.path for s in ("CBSD68", "Rain100L", "SOTS")) for src in cfg.data.sources)
        # what a run folder saves is resolved: no base:, and the run-folder loader reads it back as is
        saved = tmp_path / f"{name}.yaml"
        saved.write_text(to_yaml(cfg))
        assert "base" not in to_dict(cfg) and load_yaml(saved, TrainConfig) == cfg
        # a preset file loads the same by path (its base: then resolves from the file's folder)
        assert load_train_config(PRESETS / f"{name}.yaml") == cfg
        base = (yaml.safe_load((PRESETS / f"{name}.yaml").read_text()) or {}).get("base")
        assert base is None or base in names


def test_shipped_presets_describe_the_recipe_not_its_history():
    for file in sorted(PRESETS.glob("*.yaml")):
        comments = [line for line in file.read_text().splitlines() if line.lstrip().startswith("#")]
        header = [line for line in comments if line.startswith("#")]
        assert 0 < len(header) <= 9, f"{file.name}: a header of a few lines"
        for line in comments:
            assert not re.search(r"#\d|issue|\bdB\b", line.lstrip("# ")), f"{file.name}: {line}"


def test_preset_recipes_follow_the_papers():
    from airtool.engine.training.train import load_train_config

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
    from airtool.engine.training.train import load_train_config

    with pytest.raises(ConfigError, match=r"unknown training config 'symunet-aio9'; presets: .*cpu-small.*symunet-aio3"):
        load_train_config("symunet-aio9")


def test_preset_overrides_and_to_dict():
    from airtool.engine.training.train import load_train_config

    cfg = load_train_config("cpu-small", ["train.steps=7", "data.root=/elsewhere", "train.optim.lr=1e-4"])
    assert (cfg.train.steps, cfg.data.root, cfg.train.optim.lr) == (7, "/elsewhere", 1e-4)
    assert to_dict(cfg)["data"]["sources"][0]["path"] == "train/Train400"


def _preset_file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_merge_trees_merges_mappings_and_replaces_lists_and_scalars():
    base = {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "f": 1}
    over = {"a": {"c": [3], "d": {"g": 2}}, "f": None}
    assert merge_trees(base, over) == {"a": {"b": 1, "c": [3], "d": {"e": 1, "g": 2}}, "f": None}
    assert base == {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "f": 1}  # inputs untouched


def test_base_preset_merges_mappings_and_replaces_lists(tmp_path: Path):
    from airtool.engine.training.config import load_train_config

    child = _preset_file(tmp_path, "child.yaml", """
base: cpu-small
name: child
data:
  crop: 32
  sources:
    - {path: train/Train400, task: noise, sigmas: [25]}
train:
  optim: {lr: 5.0e-4}
  grad_clip: null
""")
    parent, cfg = load_train_config("cpu-small"), load_train_config(child)
    assert cfg.name == "child" and cfg.data.crop == 32
    assert cfg.data.batch_size == parent.data.batch_size and cfg.data.root == parent.data.root  # merged
    assert len(cfg.data.sources) == 1 and cfg.data.sources[0].sigmas == (25.0,)  # the list replaced
    assert cfg.train.optim.lr == 5e-4 and cfg.train.optim.weight_decay == parent.train.optim.weight_decay
    assert cfg.train.grad_clip is None and cfg.train.steps == parent.train.steps and cfg.val == parent.val
    assert cfg.model == parent.model and cfg.seed == parent.seed


def test_base_chain_of_two_and_relative_files(tmp_path: Path):
    from airtool.engine.training.config import load_train_config

    (tmp_path / "sub").mkdir()
    _preset_file(tmp_path / "sub", "mid.yaml", "base: symunet-s-aio3\nname: mid\nseed: 7\ntrain: {steps: 30}\n")
    top = _preset_file(tmp_path, "top.yaml", "base: sub/mid.yaml\nname: top\ntrain: {log_every: 3}\n")
    root, mid, cfg = load_train_config("symunet-s-aio3"), load_train_config(tmp_path / "sub" / "mid.yaml"), load_train_config(top)
    assert (mid.name, mid.seed, mid.train.steps) == ("mid", 7, 30)
    assert (cfg.name, cfg.seed, cfg.train.steps, cfg.train.log_every) == ("top", 7, 30, 3)
    assert cfg.train.ckpt_every == root.train.ckpt_every and cfg.data == root.data


def test_set_overrides_apply_on_top_of_the_base(tmp_path: Path):
    from airtool.engine.training.config import load_train_config

    child = _preset_file(tmp_path, "child.yaml", "base: cpu-small\nname: child\ntrain: {steps: 50, optim: {lr: 5.0e-4}}\n")
    cfg = load_train_config(child, ["train.optim.lr=1e-5", "data.crop=32", "train.log_every=2"])
    assert (cfg.train.optim.lr, cfg.data.crop, cfg.train.log_every, cfg.train.steps) == (1e-5, 32, 2, 50)


def test_base_cycle_fails_with_one_line_naming_the_file(tmp_path: Path):
    from airtool.engine.training.config import load_train_config

    a = _preset_file(tmp_path, "a.yaml", "base: b.yaml\nname: a\n")
    _preset_file(tmp_path, "b.yaml", "base: a.yaml\nname: b\n")
    with pytest.raises(ConfigError, match=r"b\.yaml: base cycle: a\.yaml -> b\.yaml -> a\.yaml$") as err:
        load_train_config(a)
    assert "\n" not in str(err.value)
    itself = _preset_file(tmp_path, "self.yaml", "base: self.yaml\n")
    with pytest.raises(ConfigError, match=r"self\.yaml: base cycle: self\.yaml -> self\.yaml$"):
        load_train_config(itself)


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ("symunet-aio9", r"x\.yaml: base 'symunet-aio9' is not a shipped preset; presets: .*cpu-small"),
        ("missing.yaml", r"x\.yaml: base 'missing\.yaml': no such file"),
        ("3", r"x\.yaml: base: expected a preset name or a YAML file, got int 3"),
    ],
)
def test_unknown_base_fails_with_one_line_naming_the_file(tmp_path: Path, base: str, message: str):
    from airtool.engine.training.config import load_train_config

    bad = _preset_file(tmp_path, "x.yaml", f"base: {base}\nname: x\n")
    with pytest.raises(ConfigError, match=message) as err:
        load_train_config(bad)
    assert "\n" not in str(err.value)


def test_errors_in_a_base_name_the_base_file(tmp_path: Path):
    from airtool.engine.training.config import load_train_config

    _preset_file(tmp_path, "broken.yaml", "name: [1,\n")
    child = _preset_file(tmp_path, "child.yaml", "base: broken.yaml\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: line \d+ invalid YAML"):
        load_train_config(child)
    typo = _preset_file(tmp_path, "typo.yaml", "base: cpu-small\ntrain: {stepz: 3}\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: train\.stepz: unknown key"):
        load_train_config(typo)


def test_a_run_folder_config_stays_resolved(tmp_path: Path):
    from airtool.engine.training.config import TrainConfig

    saved = _preset_file(tmp_path, "config.yaml", "base: cpu-small\nname: x\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: base: unknown key"):
        load_yaml(saved, TrainConfig)  # run_folder.load_run_config reads saved configs this way
