"""Types turned into small frozen descriptions: the input of every code generator.

:func:`describe_type` maps a type annotation to a :class:`TypeNode` tree;
:func:`describe_class` maps a dataclass to a :class:`ClassDescription` (its fields,
their JSON names, defaults and options).  Dataclasses inside a tree are leaves
(``kind == "class"``) so recursive types describe without recursion; generators
ask for each class's description when they reach it.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import functools
import keyword
import types
import typing
import uuid
from typing import Any, Literal, Union

from .errors import UnsupportedType
from .options import CLASS_ATTRIBUTE, METADATA_KEY, ClassOptions, Constraints, Discriminator, FieldOptions, rename_field

__all__ = ["ClassDescription", "FieldDescription", "TypeNode", "describe_class", "describe_type", "is_struct"]

MISSING: Any = dataclasses.MISSING

# Leaf types and the kind each is described as.
_SCALARS: dict[Any, str] = {
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    bytes: "bytes",
    decimal.Decimal: "decimal",
    datetime.datetime: "datetime",
    datetime.date: "date",
    datetime.time: "time",
    uuid.UUID: "uuid",
    type(None): "none",
    None: "none",
}

_SEQUENCES: dict[Any, str] = {list: "list", set: "set", frozenset: "frozenset"}

_NUMERIC = frozenset({"int", "float", "decimal"})
_SIZED = frozenset({"str", "bytes", "list", "set", "frozenset", "vartuple", "dict"})


@dataclasses.dataclass(frozen=True, slots=True)
class TypeNode:
    """One annotation, described.

    Attributes:
        kind: what the value is: ``any``, ``none``, ``bool``, ``int``, ``float``,
            ``str``, ``bytes``, ``decimal``, ``datetime``, ``date``, ``time``,
            ``uuid``, ``literal``, ``enum``, ``list``, ``set``, ``frozenset``,
            ``vartuple`` (``tuple[T, ...]``), ``tuple`` (fixed), ``dict``,
            ``optional`` (``T | None``), ``union`` or ``class`` (a dataclass).
        args: item, value or member descriptions.
        cls: the enum or dataclass for ``enum`` and ``class``.
        values: the allowed values of a ``literal``.
        constraints: value constraints from ``Annotated``, if any.
        tag_key: for a discriminated ``union``: the JSON name of the tag field.
        tags: for a discriminated ``union``: ``(tag value, member index)`` pairs.
    """

    kind: str
    args: tuple[TypeNode, ...] = ()
    cls: Any = None
    values: tuple[Any, ...] = ()
    constraints: Constraints | None = None
    tag_key: str | None = None
    tags: tuple[tuple[Any, int], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class FieldDescription:
    """One dataclass field, described.

    Attributes:
        name: the Python attribute name (a validated identifier).
        json_name: the JSON member name.
        node: the field's type.
        init: whether ``__init__`` takes it (fields with ``init=False`` are encoded, not decoded).
        kw_only: whether ``__init__`` takes it by keyword only.
        default: the default value, or ``dataclasses.MISSING``.
        default_factory: the default factory, or ``dataclasses.MISSING``.
        omit_none: leave the field out of the output when it is ``None``.
        omit_default: leave the field out of the output when it equals its default.
    """

    name: str
    json_name: str
    node: TypeNode
    init: bool
    kw_only: bool
    default: Any
    default_factory: Any
    omit_none: bool
    omit_default: bool

    @property
    def required(self) -> bool:
        """Whether decoding needs the member (no default and taken by ``__init__``)."""
        return self.init and self.default is MISSING and self.default_factory is MISSING


@dataclasses.dataclass(frozen=True, slots=True)
class ClassDescription:
    """One dataclass, described.

    Attributes:
        cls: the dataclass.
        fields: its fields in declaration order.
        options: its class options.
    """

    cls: type
    fields: tuple[FieldDescription, ...]
    options: ClassOptions

    @property
    def name(self) -> str:
        """The class's qualified name, for messages and generated file names."""
        return f"{self.cls.__module__}.{self.cls.__qualname__}"


def is_struct(tp: Any) -> bool:
    """Whether ``tp`` is a dataclass type (not an instance)."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def describe_type(tp: Any) -> TypeNode:
    """Describe the annotation ``tp``.

    Args:
        tp: a type annotation.

    Returns:
        Its description.

    Raises:
        UnsupportedType: for annotations kowito-json does not handle.
    """
    return _describe(tp)


# The description of a type is a pure function of it; the cache is the deliberate
# registry that lets every Encoder and Decoder of a class share one description.
@functools.lru_cache(maxsize=4096)
def _describe(tp: Any) -> TypeNode:
    if tp is Any or tp is object:
        return TypeNode("any")
    kind = _SCALARS.get(tp)
    if kind is not None:
        return TypeNode(kind)
    supertype = getattr(tp, "__supertype__", None)
    if supertype is not None:  # typing.NewType
        return _describe(supertype)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _annotated(args[0], tp.__metadata__)
    if origin is Union or origin is types.UnionType:
        return _union(args, None)
    if origin is Literal:
        return _literal(args)
    if tp in _SEQUENCES or origin in _SEQUENCES:
        item = _describe(args[0]) if args else TypeNode("any")
        return TypeNode(_SEQUENCES[origin or tp], (item,))
    if tp is tuple or origin is tuple:
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return TypeNode("vartuple", (_describe(args[0]) if args else TypeNode("any"),))
        if args == ((),):  # tuple[()]
            return TypeNode("tuple")
        return TypeNode("tuple", tuple(_describe(a) for a in args))
    if tp is dict or origin is dict:
        if args and args[0] is not str:
            raise UnsupportedType(f"{tp!r}: JSON object keys are strings, expected dict[str, T]")
        return TypeNode("dict", (_describe(args[1]) if args else TypeNode("any"),))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if type(member.value) not in (str, int):
                raise UnsupportedType(f"{tp!r}: enum values must be str or int, {member.name} is {member.value!r}")
        return TypeNode("enum", cls=tp)
    if is_struct(tp):
        return TypeNode("class", cls=tp)
    raise UnsupportedType(f"unsupported type {tp!r}")


def _annotated(inner: Any, metadata: tuple[Any, ...]) -> TypeNode:
    constraints: Constraints | None = None
    discriminator: Discriminator | None = None
    for item in metadata:
        if isinstance(item, Constraints):
            constraints = item if constraints is None else constraints.merged(item)
        elif isinstance(item, Discriminator):
            discriminator = item
    origin = typing.get_origin(inner)
    if discriminator is not None:
        if origin is not Union and origin is not types.UnionType:
            raise UnsupportedType(f"{discriminator!r} needs a union of dataclasses, got {inner!r}")
        node = _union(typing.get_args(inner), discriminator.field)
    else:
        node = _describe(inner)
    if constraints is None:
        return node
    target = node.args[0] if node.kind == "optional" else node
    _check_constraints(target, constraints)
    target = dataclasses.replace(
        target, constraints=constraints if target.constraints is None else target.constraints.merged(constraints)
    )
    return TypeNode("optional", (target,)) if node.kind == "optional" else target


def _check_constraints(node: TypeNode, constraints: Constraints) -> None:
    bounds = (constraints.ge, constraints.gt, constraints.le, constraints.lt)
    if any(b is not None for b in bounds) and node.kind not in _NUMERIC:
        raise UnsupportedType(f"{constraints!r}: bounds apply to numbers, not {node.kind}")
    if (constraints.min_len is not None or constraints.max_len is not None) and node.kind not in _SIZED:
        raise UnsupportedType(f"{constraints!r}: lengths apply to strings, bytes, arrays and objects, not {node.kind}")
    if constraints.pattern is not None and node.kind != "str":
        raise UnsupportedType(f"{constraints!r}: patterns apply to strings, not {node.kind}")


def _union(args: tuple[Any, ...], tag_field: str | None) -> TypeNode:
    nullable = any(a is None or a is type(None) for a in args)
    members = tuple(_describe(a) for a in args if a is not None and a is not type(None))
    flat: list[TypeNode] = []
    for member in members:  # Optional[A | B] nests: flatten to one level
        if member.kind == "union" and not member.tags:
            flat.extend(member.args)
        elif member.kind == "optional":
            nullable = True
            flat.append(member.args[0])
        else:
            flat.append(member)
    if not flat:
        return TypeNode("none")
    node = flat[0] if len(flat) == 1 else _tagged(TypeNode("union", tuple(flat)), tag_field)
    return TypeNode("optional", (node,)) if nullable else node


def _tagged(node: TypeNode, tag_field: str | None) -> TypeNode:
    """Find the discriminator of a union of dataclasses, if it has one."""
    classes = [m for m in node.args if m.kind == "class"]
    if len(classes) != len(node.args):
        if tag_field is not None:
            raise UnsupportedType(f"Discriminator({tag_field!r}) needs a union of dataclasses only")
        return node
    descriptions = [describe_class(m.cls) for m in classes]
    names = (
        [tag_field] if tag_field is not None else [f.name for f in descriptions[0].fields if f.node.kind == "literal"]
    )
    for name in names:
        tags: list[tuple[Any, int]] = []
        json_names: set[str] = set()
        for index, description in enumerate(descriptions):
            found = [f for f in description.fields if f.name == name and f.node.kind == "literal"]
            if not found:
                break
            json_names.add(found[0].json_name)
            tags.extend((value, index) for value in found[0].node.values)
        else:
            values = [t[0] for t in tags]
            if len(json_names) == 1 and len(set(values)) == len(values):
                return dataclasses.replace(node, tag_key=json_names.pop(), tags=tuple(tags))
    if tag_field is not None:
        raise UnsupportedType(
            f"Discriminator({tag_field!r}): every member needs a Literal field {tag_field!r} with distinct values"
        )
    return node


def _literal(values: tuple[Any, ...]) -> TypeNode:
    flat: list[Any] = []
    for value in values:
        if typing.get_origin(value) is Literal:  # Literal[Literal["a"], "b"]
            flat.extend(typing.get_args(value))
        elif value is None or type(value) in (str, int, bool):
            flat.append(value)
        else:
            raise UnsupportedType(f"Literal[{value!r}]: literal values must be str, int, bool or None")
    return TypeNode("literal", values=tuple(flat))


@functools.lru_cache(maxsize=4096)
def describe_class(cls: type) -> ClassDescription:
    """Describe the dataclass ``cls``: its fields, JSON names, defaults and options.

    Args:
        cls: a dataclass type.

    Returns:
        Its description.

    Raises:
        UnsupportedType: if ``cls`` is not a dataclass, a field type is not
            supported, or two fields share a JSON name.
    """
    if not is_struct(cls):
        raise UnsupportedType(f"{cls!r} is not a dataclass")
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except NameError as exc:
        raise UnsupportedType(f"{cls.__qualname__}: cannot resolve annotation: {exc}") from None
    options = getattr(cls, CLASS_ATTRIBUTE, None) or ClassOptions()
    fields: list[FieldDescription] = []
    seen: set[str] = set()
    for f in dataclasses.fields(cls):
        if not f.name.isidentifier() or keyword.iskeyword(f.name):
            raise UnsupportedType(f"{cls.__qualname__}: field name {f.name!r} is not an identifier")
        field_options = f.metadata.get(METADATA_KEY) or FieldOptions()
        json_name = field_options.rename if field_options.rename is not None else rename_field(f.name, options.rename)
        if json_name in seen:
            raise UnsupportedType(f"{cls.__qualname__}: two fields are named {json_name!r} in JSON")
        seen.add(json_name)
        try:
            node = describe_type(hints[f.name])
        except UnsupportedType as exc:
            raise UnsupportedType(f"{cls.__qualname__}.{f.name}: {exc}") from None
        omit_none = options.omit_none if field_options.omit_none is None else field_options.omit_none
        omit_none = omit_none and node.kind in ("optional", "none", "any")
        omit_default = options.omit_defaults if field_options.omit_default is None else field_options.omit_default
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        fields.append(
            FieldDescription(
                name=f.name,
                json_name=json_name,
                node=node,
                init=f.init,
                kw_only=bool(f.kw_only),
                default=f.default,
                default_factory=f.default_factory,
                omit_none=omit_none,
                omit_default=omit_default and has_default,
            )
        )
    return ClassDescription(cls, tuple(fields), options)
