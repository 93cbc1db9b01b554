"""Turning decoded JSON or query strings into typed dataclasses, with paths in errors.

This is the interim converter behind ``Json[T]`` and ``Query[T]``; kowito-json's
compiled decoders replace it when that package lands.  Messages name the JSON
path, what was expected and what came: ``$.items[3].price: expected number, got string``.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, Literal, TypeVar, Union

from .errors import ExtractError

__all__ = ["from_data", "from_query"]

T = TypeVar("T")

_JSON_NAMES: dict[Any, str] = {
    dict: "object",
    list: "array",
    tuple: "array",
    set: "array",
    frozenset: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _kind(value: object) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _type_name(tp: Any) -> str:
    """The JSON name of a Python type, for messages."""
    if tp in _JSON_NAMES:
        return "integer" if tp is int else _JSON_NAMES[tp]
    origin = typing.get_origin(tp)
    if origin is not None:
        return _JSON_NAMES.get(origin, getattr(origin, "__name__", str(tp)))
    if dataclasses.is_dataclass(tp):
        return "object"
    return getattr(tp, "__name__", str(tp))


def _hints(cls: type) -> dict[str, Any]:
    cache = _HINTS.get(cls)
    if cache is None:
        cache = _HINTS[cls] = typing.get_type_hints(cls)
    return cache


_HINTS: dict[type, dict[str, Any]] = {}


def from_data(tp: Any, value: Any, path: str = "$") -> Any:
    """Check ``value`` (decoded JSON) against ``tp`` and build it.

    Raises:
        ExtractError: (422) with every problem found, one per line.
    """
    problems: list[str] = []
    result = _convert(tp, value, path, problems)
    if problems:
        raise ExtractError("\n".join(problems), 422)
    return result


def _convert(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            trial: list[str] = []
            out = _convert(arg, value, path, trial)
            if not trial:
                return out
        names = " or ".join(_type_name(a) for a in args)
        problems.append(f"{path}: expected {names}, got {_kind(value)}")
        return None
    if origin is Literal:
        # bool is an int in Python: compare types too, so true is not Literal[1].
        if not any(value == a and type(value) is type(a) for a in typing.get_args(tp)):
            problems.append(f"{path}: expected one of {list(typing.get_args(tp))!r}, got {value!r}")
        return value
    if origin in (list, tuple, set, frozenset):
        if not isinstance(value, list):
            problems.append(f"{path}: expected array, got {_kind(value)}")
            return None
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                problems.append(f"{path}: expected array of {len(args)} items, got {len(value)}")
                return None
            pairs = enumerate(zip(args, value, strict=True))
            return tuple(_convert(a, v, f"{path}[{i}]", problems) for i, (a, v) in pairs)
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return origin(items)
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{path}: expected object, got {_kind(value)}")
            return None
        args = typing.get_args(tp)
        val_tp = args[1] if len(args) == 2 else Any
        return {k: _convert(val_tp, v, f"{path}.{k}", problems) for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            problems.append(f"{path}: expected object, got {_kind(value)}")
            return None
        hints = _hints(tp)
        kwargs: dict[str, Any] = {}
        for field in dataclasses.fields(tp):
            if not field.init:
                continue
            if field.name in value:
                kwargs[field.name] = _convert(hints[field.name], value[field.name], f"{path}.{field.name}", problems)
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                problems.append(f"{path}.{field.name}: required field missing")
        if problems:
            return None
        return tp(**kwargs)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            problems.append(f"{path}: expected one of {[m.value for m in tp]!r}, got {value!r}")
            return None
    if tp is float:
        if type(value) in (int, float):
            return float(value)
        problems.append(f"{path}: expected number, got {_kind(value)}")
        return None
    if tp is int:
        if type(value) is int:
            return value
        problems.append(f"{path}: expected integer, got {_kind(value)}")
        return None
    if tp in (str, bool):
        if type(value) is tp:
            return value
        problems.append(f"{path}: expected {_JSON_NAMES[tp]}, got {_kind(value)}")
        return None
    if tp is type(None):
        if value is not None:
            problems.append(f"{path}: expected null, got {_kind(value)}")
        return None
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    problems.append(f"{path}: unsupported type {tp!r}")
    return None


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def from_query(tp: type[T], pairs: list[tuple[str, str]]) -> T:
    """Build dataclass ``tp`` from query pairs, converting scalars and lists.

    Raises:
        ExtractError: (422) naming each parameter that is missing or malformed.
    """
    if not (dataclasses.is_dataclass(tp) and isinstance(tp, type)):
        raise TypeError(f"Query[{tp!r}]: expected a dataclass")
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    hints = _hints(tp)
    problems: list[str] = []
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(tp):
        if not field.init:
            continue
        raw = grouped.get(field.name)
        if raw is None:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                problems.append(f"query parameter {field.name!r}: required, missing")
            continue
        field_tp = hints[field.name]
        origin = typing.get_origin(field_tp)
        if origin in (list, tuple, set, frozenset):
            args = typing.get_args(field_tp)
            item_tp = args[0] if args else str
            kwargs[field.name] = origin(_scalar(item_tp, v, field.name, problems) for v in raw)
        else:
            kwargs[field.name] = _scalar(field_tp, raw[-1], field.name, problems)
    if problems:
        raise ExtractError("\n".join(problems), 422)
    return tp(**kwargs)


def _scalar(tp: Any, raw: str, name: str, problems: list[str]) -> Any:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else str
    where = f"query parameter {name!r}"
    try:
        if tp is int:
            return int(raw)
        if tp is float:
            return float(raw)
        if tp is bool:
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(raw)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return tp(raw)
    except ValueError:
        expected = getattr(tp, "__name__", str(tp))
        problems.append(f"{where}: expected {expected}, got {raw!r}")
        return None
    return raw
