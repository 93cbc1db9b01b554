"""Python annotations to PostgreSQL types, spelled as ``format_type()`` prints them.

Also decides the two per-column conversions the generated code calls (only for columns
that need one): ``from_db`` (a driver value to the attribute's type, e.g. ``str`` to an
``Enum`` member, a ``dict`` to a kowito-json dataclass) and ``to_db`` (the reverse).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
import types
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .errors import ModelError

__all__ = ["TypeSpec", "enum_type_name", "map_annotation"]

#: Scalar annotations and their SQL types.
SCALAR_TYPES: dict[Any, str] = {
    int: "integer",
    bool: "boolean",
    float: "double precision",
    str: "text",
    bytes: "bytea",
    Decimal: "numeric",
    dt.datetime: "timestamp with time zone",
    dt.date: "date",
    dt.time: "time without time zone",
    dt.timedelta: "interval",
    uuid.UUID: "uuid",
}


@dataclasses.dataclass(frozen=True, slots=True)
class TypeSpec:
    """How one annotation maps to a column."""

    sql_type: str
    nullable: bool
    from_db: Callable[[Any], Any] | None = None
    to_db: Callable[[Any], Any] | None = None
    enum_values: tuple[str, ...] = ()


def enum_type_name(cls: type) -> str:
    """The PostgreSQL enum type name for an ``Enum`` class: its name in snake_case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


def _enum_to_db(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _split_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        nullable = len(args) != len(typing.get_args(tp))
        if len(args) != 1:
            return tp, nullable
        return args[0], nullable
    return tp, False


def _json_converters(tp: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    import kowito_json

    decoder = kowito_json.decoder_for(tp)
    encoder = kowito_json.encoder_for(tp)
    return decoder.from_builtins, encoder.to_builtins


def map_annotation(tp: Any, where: str) -> TypeSpec:
    """Map a resolved annotation to a :class:`TypeSpec`.

    Args:
        tp: The annotation (``typing.get_type_hints`` resolved).
        where: ``Model.field`` for error messages.

    Raises:
        ModelError: No SQL type fits the annotation (give ``column(sql_type=...)``).
    """
    inner, nullable = _split_optional(tp)
    if typing.get_origin(inner) is typing.Annotated:
        inner = typing.get_args(inner)[0]
    if inner in SCALAR_TYPES:
        return TypeSpec(SCALAR_TYPES[inner], nullable)
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        if issubclass(inner, enum.IntEnum):
            return TypeSpec("integer", nullable, from_db=inner, to_db=_enum_to_db)
        values = tuple(str(m.value) for m in inner)
        return TypeSpec(enum_type_name(inner), nullable, from_db=inner, to_db=_enum_to_db, enum_values=values)
    if inner is typing.Any or inner is dict or typing.get_origin(inner) is dict:
        return TypeSpec("jsonb", nullable)
    if isinstance(inner, type) and dataclasses.is_dataclass(inner):
        from_db, to_db = _json_converters(inner)
        return TypeSpec("jsonb", nullable, from_db=from_db, to_db=to_db)
    origin = typing.get_origin(inner)
    if origin is list or inner is list:
        args = typing.get_args(inner)
        element = args[0] if args else typing.Any
        element_inner, _ = _split_optional(element)
        if element_inner in SCALAR_TYPES and element_inner is not bytes:
            return TypeSpec(SCALAR_TYPES[element_inner] + "[]", nullable)
        if isinstance(element_inner, type) and dataclasses.is_dataclass(element_inner):
            from_db, to_db = _json_converters(inner)
            return TypeSpec("jsonb", nullable, from_db=from_db, to_db=to_db)
        return TypeSpec("jsonb", nullable)
    raise ModelError(f"{where}: no SQL type for annotation {tp!r}; give column(sql_type=...)")
