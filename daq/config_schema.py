"""Typed loading of YAML mappings into dataclasses, with errors that say where.

:func:`from_mapping` turns a plain mapping (as ``yaml.safe_load`` gives it)
into a tree of dataclasses, checking every value against the field's type
annotation. Unknown keys are errors, not ignored: a typo in a limit must
never silently fall back to a default. The one exception: keys starting with
``x-`` are extension fields, which hold YAML anchors (``&name``) that the
rest of the file reuses (``*name``); they are skipped. Every error is a
:class:`daq.errors.ConfigError` naming the file, the key path
(``instruments.ls372.channels[3].period_s``) and what was expected.

Supported annotations: ``bool``, ``int``, ``float`` (ints accepted),
``str``, ``Literal[...]``, ``X | None``, ``list[X]``, ``tuple[X, ...]``,
``dict[str, X]``, ``Any`` (kept as is), enums (by value or name) and nested
dataclasses. A dataclass may define ``__post_init__`` raising ``ValueError``
for cross-field checks; the message is reported at that dataclass's path.

Used by ``daq.config`` for the service config and by the simulated lab for
its own section, so both speak with one voice.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import yaml

from daq.errors import ConfigError

T = TypeVar("T")


def from_mapping(cls: type[T], data: Any, *, file: str = "", path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; raise :class:`ConfigError` on any mismatch."""
    return typing.cast(T, _convert(cls, data, file, path))


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin in (list, tuple):
        return f"a list of {_describe(get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of names to {_describe(get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({getattr(tp, '__name__', tp)})"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if tp is type(None):
        return "nothing (null)"
    return getattr(tp, "__name__", str(tp))


def _fail(file: str, path: str, expected: str, got: Any) -> ConfigError:
    shown = repr(got)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ConfigError(f"expected {expected}, got {shown}", file=file, key_path=path or "<top>")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _convert(tp: Any, value: Any, file: str, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, file, path)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise _fail(file, path, _describe(tp), value)
    if origin is typing.Literal:
        if value in get_args(tp):
            return value
        raise _fail(file, path, _describe(tp), value)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _fail(file, path, _describe(tp), value)
        item_tp = get_args(tp)[0]
        items = [_convert(item_tp, v, file, _join(path, i)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _fail(file, path, _describe(tp), value)
        key_tp, val_tp = get_args(tp)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _fail(file, _join(path, str(k)), "a text key", k)
            out[_convert(key_tp, k, file, path)] = _convert(val_tp, v, file, _join(path, k))
        return out
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _convert_dataclass(tp, value, file, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if value == member.value or value == member.name:
                return member
        raise _fail(file, path, _describe(tp), value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(file, path, "true or false", value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(file, path, "a whole number", value)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _fail(file, path, "a number", value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _fail(file, path, "text", value)
    raise TypeError(f"config schema uses an unsupported annotation {tp!r} at {path}")


def _convert_dataclass(cls: type, value: Any, file: str, path: str) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise _fail(file, path, _describe(cls), value)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    # ``x-...`` keys hold YAML anchors for reuse elsewhere in the file (extension fields).
    unknown = sorted(k for k in set(value) - set(fields) if not str(k).startswith("x-"))
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise ConfigError(
            f"unknown key {unknown[0]!r} (known keys: {known})",
            file=file,
            key_path=_join(path, str(unknown[0])),
        )
    kwargs = {}
    for name, field in fields.items():
        if name in value:
            kwargs[name] = _convert(hints[name], value[name], file, _join(path, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(
                f"missing required key {name!r} ({_describe(hints[name])})",
                file=file,
                key_path=_join(path, name),
            )
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(str(exc), file=file, key_path=path or "<top>") from exc


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", file=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}not valid YAML ({problem})", file=str(path)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping at the top, got {type(data).__name__}",
                          file=str(path))
    return data


def anchor(obj: Any, base_dir: str, data_root: str = "") -> None:
    """Set ``base_dir`` (the config file's directory) and ``data_root`` (the lab's data
    directory, :mod:`daq.paths`) on every section of ``obj`` that has those non-YAML fields."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return
    for item in dataclasses.fields(obj):
        value = getattr(obj, item.name)
        if item.name == "base_dir" and not item.init:
            object.__setattr__(obj, "base_dir", base_dir)
        elif item.name == "data_root" and not item.init:
            object.__setattr__(obj, "data_root", data_root)
        elif dataclasses.is_dataclass(value):
            anchor(value, base_dir, data_root)
        elif isinstance(value, dict):
            for entry in value.values():
                anchor(entry, base_dir, data_root)
