"""Generated encoders: from typed values to what ``orjson.dumps`` writes.

Each dataclass gets one generated function ``encode_<Class>(o)`` returning a
dict with JSON member names, applying renames and omissions.  Values orjson
writes natively and correctly for their declared type (str, int, float, bool,
None, datetime, date, time, UUID, enums, lists and tuples of those) are passed
through untouched; Decimal becomes a string, bytes base64 (RFC 4648 section 4),
sets lists, and times
their ``isoformat()``.

:func:`is_native` tells when a type needs none of this and orjson's own
dataclass serialization writes the same bytes faster (dict-based dataclasses
without options), and encoders use it then.
"""

from __future__ import annotations

import base64
import dataclasses
import decimal
from collections.abc import Callable
from typing import Any

from ._codegen import SourceBuilder, compile_unit
from ._describe import MISSING, ClassDescription, TypeNode, describe_class, is_struct

__all__ = ["EncoderFactory", "is_native", "orjson_default"]

_PASSTHROUGH = frozenset({"none", "bool", "int", "float", "str", "datetime", "date", "uuid", "literal", "enum"})
# Kinds orjson cannot write itself; orjson_default converts them, so they stay native.
_VIA_DEFAULT = frozenset({"decimal", "bytes", "set", "frozenset"})


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def orjson_default(value: Any) -> Any:
    """``default=`` for ``orjson.dumps``: the types orjson does not write itself.

    Raises:
        TypeError: for values of no supported type (orjson turns it into JSONEncodeError).
    """
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _b64(bytes(value))
    if isinstance(value, (set, frozenset)):
        return list(value)
    if is_struct(type(value)):
        from .encoder import encoder_for

        return encoder_for(type(value)).to_builtins(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def is_native(node: TypeNode) -> bool:
    """Whether orjson's native serialization (plus :func:`orjson_default`) writes ``node`` as kowito-json does."""
    return _native(node, set())


def _native(node: TypeNode, seen: set[type]) -> bool:
    if node.kind in _PASSTHROUGH or (node.kind in _VIA_DEFAULT and not node.args):
        return True
    if node.kind in ("list", "vartuple", "tuple", "dict", "optional", "union", "set", "frozenset"):
        return all(_native(a, seen) for a in node.args)
    if node.kind == "class":
        if node.cls in seen:
            return True
        seen.add(node.cls)
        description = describe_class(node.cls)
        # Measured (benchmarks/json.py): orjson reads a dict-based dataclass's
        # __dict__ faster than generated code can, but is slower than generated
        # code on slots dataclasses, which it reads attribute by attribute.
        if "__slots__" in description.cls.__dict__ or _has_extra_attributes(description):
            return False
        # orjson also skips __dict__ keys starting with "_", which are fields to kowito-json.
        return all(
            f.json_name == f.name
            and not f.name.startswith("_")
            and not f.omit_none
            and not f.omit_default
            and _native(f.node, seen)
            for f in description.fields
        )
    return False


def _has_extra_attributes(description: ClassDescription) -> bool:
    # orjson writes a dict-based dataclass from its __dict__; a property cache
    # or other instance attribute would leak into the output.
    return any(
        not isinstance(v, (staticmethod, classmethod)) and hasattr(v, "__set_name__")
        for v in vars(description.cls).values()
    )


def _passthrough(node: TypeNode) -> bool:
    if node.kind in _PASSTHROUGH or node.kind == "any":
        return True
    if node.kind in ("list", "vartuple", "tuple", "optional", "dict"):
        return all(_passthrough(a) for a in node.args)
    if node.kind == "union":
        return all(_passthrough(a) for a in node.args)
    return False


ClassRef = Callable[[type], str]


# How deep dataclasses nested in a dataclass are written inline (see _Emitter.inline_class).
_INLINE_DEPTH = 2


class _Emitter:
    def __init__(self, builder: SourceBuilder, class_ref: ClassRef, outer: type | None = None) -> None:
        self.b = builder
        self.class_ref = class_ref
        self.inlining: list[type] = [] if outer is None else [outer]

    def expr(self, node: TypeNode, value: str) -> str:
        """An expression converting ``value`` (a name or attribute access) for orjson."""
        if _passthrough(node):
            return value
        kind = node.kind
        if kind == "decimal":
            return f"str({value})"
        if kind == "bytes":
            return f"_b64({value})"
        if kind == "time":
            # orjson 3.13 drops a leading zero of some microseconds ("00:00:00.10000" for 10 ms).
            return f"{value}.isoformat()"
        if kind == "class":
            return self.inline_class(node.cls, value) or f"{self.class_ref(node.cls)}({value})"
        if kind in ("list", "vartuple", "set", "frozenset"):
            item = self.b.var("_x")
            return f"[{self.expr(node.args[0], item)} for {item} in {value}]"
        if kind == "tuple":
            return "[" + "".join(f"{self.expr(a, f'{value}[{i}]')}, " for i, a in enumerate(node.args)) + "]"
        if kind == "dict":
            key, item = self.b.var("_k"), self.b.var("_x")
            return f"{{{key}: {self.expr(node.args[0], item)} for {key}, {item} in {value}.items()}}"
        if kind == "optional":
            return f"(None if {value} is None else {self.expr(node.args[0], value)})"
        # A union with members needing conversion: dispatch on the runtime type.
        return f"_encode_any({value})"

    def inline_class(self, cls: type, value: str) -> str | None:
        """The dict display ``encode_<cls>(value)`` returns, written in place: one call less per object.

        Only for classes whose encoder is one dict display (no omission rules), not
        recursively, and at most _INLINE_DEPTH deep.  ``value`` is evaluated once: a
        conditional binds it first (``_NEVER`` is a fresh object no value can be).
        """
        if cls in self.inlining or len(self.inlining) > _INLINE_DEPTH:
            return None
        description = describe_class(cls)
        if not description.fields or any(f.omit_none or f.omit_default for f in description.fields):
            return None
        self.inlining.append(cls)
        try:
            target = value if value.isidentifier() else self.b.var("_t")
            members = [
                f"{self.b.literal(f.json_name)}: {self.expr(f.node, f'{target}.{f.name}')}" for f in description.fields
            ]
        finally:
            self.inlining.pop()
        display = "{" + ", ".join(members) + "}"
        if target == value:
            return display
        return f"({display} if ({target} := {value}) is not _NEVER else None)"


def _function_name(cls: type) -> str:
    return f"encode_{cls.__name__}" if cls.__name__.isidentifier() else "encode_class"


def _encode_any(value: Any) -> Any:
    if is_struct(type(value)):
        from .encoder import encoder_for

        return encoder_for(type(value)).to_builtins(value)
    if isinstance(value, (decimal.Decimal, bytes, set, frozenset)):
        return orjson_default(value)
    return value


_RUNTIME: dict[str, Any] = {"_b64": _b64, "_encode_any": _encode_any, "_NEVER": object()}


def generate_class(description: ClassDescription, class_ref: ClassRef) -> tuple[str, dict[str, Any]]:
    """The source and globals of the encoding function of one dataclass.

    Returns:
        ``(source, globals)``; the source defines ``encode_<Class>(o)``.
    """
    b = SourceBuilder(_RUNTIME)
    emitter = _Emitter(b, class_ref, description.cls)
    b.line(0, f"def {_function_name(description.cls)}(o):")
    if not any(f.omit_none or f.omit_default for f in description.fields):
        members = [f"{b.literal(f.json_name)}: {emitter.expr(f.node, 'o.' + f.name)}" for f in description.fields]
        b.line(1, "return {" + ", ".join(members) + "}")
        return b.source, b.globals
    b.line(1, "d = {}")
    for i, f in enumerate(description.fields):
        value = f"_f{i}"
        b.line(1, f"{value} = o.{f.name}")
        conditions = []
        if f.omit_none:
            conditions.append(f"{value} is not None")
        if f.omit_default:
            if f.default_factory is not MISSING:
                conditions.append(f"{value} != {b.bind(f.default_factory, '_factory')}()")
            else:
                conditions.append(f"{value} != {b.bind(f.default, '_default')}")
        target = f"d[{b.literal(f.json_name)}] = {emitter.expr(f.node, value)}"
        if conditions:
            b.line(1, f"if {' and '.join(conditions)}:")
            b.line(2, target)
        else:
            b.line(1, target)
    b.line(1, "return d")
    return b.source, b.globals


def generate_root(node: TypeNode, class_ref: ClassRef) -> tuple[str, dict[str, Any]]:
    """The source and globals of an encoding function for a type that is not a dataclass."""
    b = SourceBuilder(_RUNTIME)
    emitter = _Emitter(b, class_ref)
    b.line(0, "def encode_root(o):")
    b.line(1, f"return {emitter.expr(node, 'o')}")
    return b.source, b.globals


@dataclasses.dataclass
class _Unit:
    function: Callable[[Any], Any]
    source: str
    classes: list[type]


class EncoderFactory:
    """Compiles and keeps encoding functions, one per class."""

    def __init__(self) -> None:
        self._units: dict[type, _Unit] = {}

    def class_unit(self, cls: type) -> _Unit:
        """The compiled unit of dataclass ``cls``."""
        unit = self._units.get(cls)
        if unit is not None:
            return unit
        description = describe_class(cls)
        refs: dict[type, str] = {}
        source, globals_ = generate_class(description, self._recorder(refs))
        compile_unit(source, globals_, f"encode {description.name}")
        unit = self._units[cls] = _Unit(globals_[_function_name(cls)], source, list(refs))
        self._bind(refs, globals_)
        return unit

    def root_unit(self, node: TypeNode) -> _Unit:
        """A compiled unit for ``node``: the class's own for dataclasses."""
        if node.kind == "class":
            return self.class_unit(node.cls)
        refs: dict[type, str] = {}
        source, globals_ = generate_root(node, self._recorder(refs))
        compile_unit(source, globals_, "encode root")
        self._bind(refs, globals_)
        return _Unit(globals_["encode_root"], source, list(refs))

    def sources(self, unit: _Unit) -> str:
        """The source of ``unit`` and of every class it reaches."""
        parts, seen, todo = [unit.source], set(), list(unit.classes)
        while todo:
            cls = todo.pop(0)
            if cls in seen:
                continue
            seen.add(cls)
            other = self.class_unit(cls)
            if other is not unit:
                parts.append(other.source)
            todo.extend(other.classes)
        return "\n".join(parts)

    @staticmethod
    def _recorder(refs: dict[type, str]) -> ClassRef:
        def class_ref(cls: type) -> str:
            name = refs.get(cls)
            if name is None:
                name = refs[cls] = f"_encode_{len(refs)}"
            return name

        return class_ref

    def _bind(self, refs: dict[type, str], globals_: dict[str, Any]) -> None:
        for cls, name in refs.items():
            globals_[name] = self.class_unit(cls).function
