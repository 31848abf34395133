"""YAML -> nested frozen dataclasses, with errors that name the dotted key.

A config class is a (frozen) dataclass whose fields are typed with: ``bool``, ``int``,
``float`` (ints accepted), ``str``, ``Path``, ``Literal[...]``, ``X | None``, ``tuple[T, ...]``,
``tuple[A, B]``, ``list[T]``, ``dict[str, T]`` or another config dataclass. Fields without a
default are required.

- ``from_dict(cls, data)`` validates and builds; an unknown key raises
  ``ConfigError("train.optim.lr_base: unknown key")``, a key the class lists in its
  ``RETIRED_KEYS: ClassVar[Mapping[str, str]]`` says what to write instead (``train.amp``), a wrong
  type names the path and both types.
- ``load_yaml(path, cls, overrides)`` reads with ``yaml.safe_load`` and applies ``--set`` overrides;
  ``read_yaml``, ``merge_trees`` and ``build`` are its steps, for loaders that combine files
  (a training preset's ``base:``, engine/training/config.py).
- ``apply_overrides(cfg, ["a.b=c", ...])`` parses each value with ``yaml.safe_load`` (never exec).
- ``to_dict`` / ``to_yaml`` give the resolved config back, for the run folder.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from airtool.errors import ConfigError

T = TypeVar("T")


def _where(path: str) -> str:
    return path or "<root>"


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (lists -> tuples...)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, args, path)
    if origin is typing.Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{_where(path)}: {value!r} is not one of {choices}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if origin in (tuple, list):
        return _convert_sequence(value, tp, path)
    if origin in (dict, Mapping) or tp is dict:
        return _convert_mapping(value, args, path)
    return _convert_scalar(value, tp, path)


def _convert_union(value: Any, args: tuple[Any, ...], path: str) -> Any:
    if value is None and type(None) in args:
        return None
    for arg in (a for a in args if a is not type(None)):
        try:
            return _convert(value, arg, path)
        except ConfigError:
            continue
    names = " or ".join(_type_name(a) for a in args)
    raise ConfigError(f"{_where(path)}: expected {names}, got {type(value).__name__} {value!r}")


def _convert_sequence(value: Any, tp: Any, path: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{_where(path)}: expected a list, got {type(value).__name__} {value!r}")
    if origin is list or (len(args) == 2 and args[1] is Ellipsis):
        item = args[0] if args else Any
        items = [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    else:
        if len(value) != len(args):
            raise ConfigError(f"{_where(path)}: expected {len(args)} items, got {len(value)}")
        items = [_convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))]
    return items if origin is list else tuple(items)


def _convert_mapping(value: Any, args: tuple[Any, ...], path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{_where(path)}: expected a mapping, got {type(value).__name__} {value!r}")
    item = args[1] if len(args) == 2 else Any
    return {str(k): _convert(v, item, f"{path}.{k}" if path else str(k)) for k, v in value.items()}


def _convert_scalar(value: Any, tp: Any, path: str) -> Any:
    if isinstance(value, bool) and tp is not bool:
        pass  # bool is an int subclass: refuse ``true`` where a number is expected
    elif tp is float and isinstance(value, (int, str)):
        try:  # PyYAML (YAML 1.1) reads "1e-4" as a string; accept numeric strings for floats
            return float(value)
        except ValueError:
            pass
    elif tp is Path and isinstance(value, (str, Path)):
        return Path(value)
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(
        f"{_where(path)}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}"
    )


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build the dataclass ``cls`` from a mapping, checking keys and types recursively."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{_where(path)}: expected a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    for key in data:
        # A retired key set to null is skipped: configs saved (run folders) before it was retired hold it so.
        if key not in fields and not (key in _retired_keys(cls) and data[key] is None):
            raise ConfigError(f"{path + '.' if path else ''}{key}: {_why_refused(cls, key)}")
    kwargs = {}
    for name, field in fields.items():
        sub = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], sub)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{sub}: required key is missing")
    return cls(**kwargs)


def _retired_keys(cls: type) -> Mapping[str, str]:
    return getattr(cls, "RETIRED_KEYS", {})


def _why_refused(cls: type, key: str) -> str:
    """Why ``cls`` refuses ``key``: unknown, or retired, with what to write instead."""
    retired = _retired_keys(cls)
    return f"no longer read; {retired[key]}" if key in retired else "unknown key"


def to_dict(cfg: Any) -> Any:
    """Plain YAML-safe data (dicts, lists, str, numbers) from a config dataclass tree."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, Mapping):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML text (keys in field order)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.optim.lr=1e-4"`` -> (["train", "optim", "lr"], 0.0001), value via yaml.safe_load."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {item!r}: bad value ({_yaml_reason(err)})") from None
    return key.split("."), value


def _yaml_reason(err: yaml.YAMLError) -> str:
    return str(getattr(err, "problem", None) or err).splitlines()[0]


def _set_in(tree: dict[str, Any], keys: list[str], value: Any, cls: type, item: str) -> None:
    """Set ``keys`` in the raw dict, refusing keys that ``cls`` (or a nested dataclass) lacks."""
    node: Any = tree
    tp: Any = cls
    for depth, key in enumerate(keys):
        dotted = ".".join(keys[: depth + 1])
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            if key not in hints or key in _retired_keys(tp):
                raise ConfigError(f"{dotted}: {_why_refused(tp, key)} (in --set {item!r})")
            tp = _strip_optional(hints[key])
        elif typing.get_origin(tp) in (dict, Mapping):
            tp = typing.get_args(tp)[1] if typing.get_args(tp) else Any
        else:
            raise ConfigError(f"{dotted}: cannot set inside a {_type_name(tp)} (in --set {item!r})")
        if depth == len(keys) - 1:
            node[key] = value
        else:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp


def apply_overrides(cfg: T, overrides: Iterable[str]) -> T:
    """Return a new config with each ``KEY.PATH=VALUE`` applied and the whole tree re-validated."""
    overrides = list(overrides)
    if not overrides:
        return cfg
    tree = to_dict(cfg)
    for item in overrides:
        keys, value = parse_override(item)
        _set_in(tree, keys, value, type(cfg), item)
    return from_dict(type(cfg), tree)


def read_yaml(path: str | Path) -> Any:
    """The data of the YAML file ``path`` (``yaml.safe_load``); a missing file or a syntax error
    raises ``ConfigError`` naming the file (and the line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror or err})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} invalid YAML ({_yaml_reason(err)})") from None


def merge_trees(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merge key by key, recursively; lists and scalars
    (``null`` included) replace."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_trees(merged[key], value)
        else:
            merged[key] = value
    return merged


def build(cls: type[T], data: Any, source: str | Path, overrides: Iterable[str] = ()) -> T:
    """``from_dict`` of YAML data read from ``source`` (named in its errors), then the overrides."""
    try:
        cfg = from_dict(cls, {} if data is None else data)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return apply_overrides(cfg, overrides)


def load_yaml(path: str | Path, cls: type[T], overrides: Iterable[str] = ()) -> T:
    """Read ``path`` (safe YAML), build ``cls`` and apply ``--set`` overrides.

    A missing file, a YAML syntax error, an unknown key or a wrong type raises ``ConfigError``.
    """
    return build(cls, read_yaml(path), Path(path), overrides)
