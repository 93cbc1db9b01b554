"""Generated decoders: from decoded JSON (dicts, lists, scalars) to typed values.

Each dataclass gets one generated unit holding two functions:

* ``decode_<Class>(v)``, the fast path: straight-line checks that raise at the
  first problem (``raise _FAIL``, or whatever exception a lookup throws);
* ``check_<Class>(v, path, errs)``, the reporting path: the same checks in the
  same order, but each problem is appended to ``errs`` with its JSON path and
  checking goes on.

Decoders run the fast path and, only when it fails, the reporting path, so
valid input never pays for paths or error lists.  Both functions come from one
emitter (:class:`_Emitter`) with a ``report`` switch, which keeps them agreeing.
Classes reference each other through globals filled in after compilation, so
recursive and mutually recursive dataclasses work.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import types
from collections.abc import Callable
from typing import Any

import orjson

from . import _parsers
from ._codegen import SourceBuilder, compile_unit
from ._describe import MISSING, ClassDescription, TypeNode, describe_class
from .options import Constraints, DecodeOptions

__all__ = ["DecoderFactory", "Fail"]


class Fail(Exception):
    """Raised by fast-path decoders at the first problem; never escapes a Decoder."""


_FAIL = Fail()

_EXPECTED = {
    "none": "null",
    "bool": "boolean",
    "int": "integer",
    "float": "number",
    "str": "string",
    "bytes": "base64 string",
    "decimal": "decimal number or string",
    "datetime": "RFC 3339 date-time",
    "date": "RFC 3339 date",
    "time": "RFC 3339 time",
    "uuid": "UUID string",
    "list": "array",
    "set": "array",
    "frozenset": "array",
    "vartuple": "array",
    "tuple": "array",
    "dict": "object",
    "class": "object",
}

# The JSON kinds each description accepts, to pick which member of a failed
# union to report on.
_CONSUMES = {
    "none": ("null",),
    "bool": ("boolean",),
    "int": ("number",),
    "float": ("number",),
    "decimal": ("number", "string"),
    "list": ("array",),
    "set": ("array",),
    "frozenset": ("array",),
    "vartuple": ("array",),
    "tuple": ("array",),
    "dict": ("object",),
    "class": ("object",),
    "union": ("object",),
}

_PARSERS = {
    "bytes": "_parse_base64",
    "datetime": "_parse_datetime",
    "date": "_parse_date",
    "time": "_parse_time",
    "uuid": "_parse_uuid",
}


def _got(value: object) -> str:
    """The received value for a message: short values shown, containers by kind."""
    if value is None or type(value) is bool:
        return "null" if value is None else str(value).lower()
    if type(value) in (str, int, float):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return _parsers.json_kind(value)


def _constructor_message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _to_set(items: list[Any], kind: type) -> Any:
    try:
        return kind(items)
    except TypeError:
        return None


def _tag_index(tags: dict[Any, int], value: object) -> int:
    try:
        return tags.get(value, -1)
    except TypeError:  # an unhashable tag (array or object)
        return -1


def _union_errors(
    errs: list[tuple[str, str]],
    path: str,
    value: object,
    tried: tuple[tuple[tuple[str, ...], list[Any]], ...],
    expected: str,
) -> None:
    """Report a union no member accepted: the one member that takes this JSON kind, or all names."""
    kind = _parsers.json_kind(value)
    fitting = [member_errs for kinds, member_errs in tried if kind in kinds]
    if len(fitting) == 1:
        errs.extend(fitting[0])
    else:
        errs.append((path, f"expected {expected}, got {_got(value)}"))


_RUNTIME: dict[str, Any] = {
    "_FAIL": _FAIL,
    "_MISSING": MISSING,
    "_kind": _parsers.json_kind,
    "_got": _got,
    "_key_path": _parsers.key_path,
    "_parse_base64": _parsers.parse_base64,
    "_parse_datetime": _parsers.parse_datetime,
    "_plain_datetime": _parsers.plain_datetime,
    "_fromisoformat": datetime.datetime.fromisoformat,
    "_parse_date": _parsers.parse_date,
    "_parse_time": _parsers.parse_time,
    "_parse_uuid": _parsers.parse_uuid,
    "_parse_decimal": _parsers.parse_decimal,
    "_Decimal": decimal.Decimal,
    "_int_to_float": _parsers.int_to_float,
    "_coerce_int": _parsers.coerce_int,
    "_coerce_float": _parsers.coerce_float,
    "_coerce_bool": _parsers.coerce_bool,
    "_to_set": _to_set,
    "_tag_index": _tag_index,
    "_union_errors": _union_errors,
    "_ctor_message": _constructor_message,
    "_set": set,
    "_frozenset": frozenset,
    "_new": object.__new__,
    "_loads": orjson.loads,
}


def _expected(node: TypeNode) -> str:
    if node.kind in _EXPECTED:
        return _EXPECTED[node.kind]
    if node.kind == "literal":
        return "one of " + repr(list(node.values))
    if node.kind == "enum":
        return "one of " + repr([m.value for m in node.cls])
    if node.kind == "optional":
        return _expected(node.args[0]) + " or null"
    if node.kind == "union":
        return " or ".join(_expected(m) for m in node.args)
    return node.kind


def _consumes(node: TypeNode) -> tuple[str, ...]:
    if node.kind in _CONSUMES:
        return _CONSUMES[node.kind]
    if node.kind == "literal":
        return tuple({_parsers.json_kind(v) for v in node.values})
    if node.kind == "enum":
        return tuple({_parsers.json_kind(m.value) for m in node.cls})
    if node.kind == "optional":
        return ("null", *_consumes(node.args[0]))
    return ("string",)


ClassRef = Callable[[type], tuple[str, str]]


class _Emitter:
    """Writes the decoding code of one unit, in fast or reporting mode."""

    def __init__(self, builder: SourceBuilder, options: DecodeOptions, report: bool, class_ref: ClassRef) -> None:
        self.b = builder
        self.options = options
        self.report = report
        self.class_ref = class_ref

    # -- failure -------------------------------------------------------------
    def fail(self, ind: int, path: str, message: str, errs: str) -> None:
        if self.report:
            self.b.line(ind, f"{errs}.append(({path}, {message}))")
        else:
            self.b.line(ind, "raise _FAIL")

    def chain(self, ind: int, checks: list[tuple[str, str]], path: str, errs: str) -> None:
        """An if/elif chain: each condition is a problem, tested only if the previous ones passed."""
        for i, (condition, message) in enumerate(checks):
            self.b.line(ind, f"{'if' if i == 0 else 'elif'} {condition}:")
            self.fail(ind + 1, path, message, errs)

    def materialize(self, ind: int, path: str) -> str:
        """Bind a path expression to a local (reporting mode only) so it can nest in f-strings."""
        if not self.report or path.isidentifier():
            return path
        name = self.b.var("_p")
        self.b.line(ind, f"{name} = {path}")
        return name

    def type_message(self, node: TypeNode, value: str) -> str:
        return f"{self.b.literal('expected ' + _expected(node) + ', got ')} + _kind({value})"

    def value_message(self, node: TypeNode, value: str) -> str:
        return f"{self.b.bind('expected ' + _expected(node) + ', got ', '_s')} + _got({value})"

    def constraint_checks(
        self, constraints: Constraints | None, value: str, sized: bool, shown: str | None = None
    ) -> list[tuple[str, str]]:
        """Conditions (on ``value``) and messages (showing ``shown``, the input) of each constraint."""
        if constraints is None:
            return []
        c = constraints
        shown = shown or value
        checks: list[tuple[str, str]] = []
        for bound, op, text in ((c.ge, "<", ">="), (c.gt, "<=", ">"), (c.le, ">", "<="), (c.lt, ">=", "<")):
            if bound is not None:
                name = self.b.bind(bound, "_c")
                checks.append(
                    (f"{value} {op} {name}", f"{self.b.bind(f'expected {text} {bound!r}, got ', '_s')} + _got({shown})")
                )
        if sized:
            for bound, op, text in ((c.min_len, "<", ">="), (c.max_len, ">", "<=")):
                if bound is not None:
                    message = f"{self.b.bind(f'expected length {text} {bound}, got ', '_s')} + str(len({value}))"
                    checks.append((f"len({value}) {op} {bound}", message))
        if c.pattern is not None:
            import re

            pattern = self.b.bind(re.compile(c.pattern), "_re")
            message = f"{self.b.bind(f'expected string matching {c.pattern!r}, got ', '_s')} + _got({value})"
            checks.append((f"{pattern}.search({value}) is None", message))
        return checks

    # -- dispatch ------------------------------------------------------------
    def emit(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        """Write code validating local ``value`` against ``node``; return the name holding the result."""
        if node.kind == "any":
            return value
        if self.options.coerce_strings:
            self.coerce(node, value, ind)
        method: Callable[[TypeNode, str, int, str, str], str] = getattr(self, "emit_" + node.kind)
        return method(node, value, ind, path, errs)

    def coerce(self, node: TypeNode, value: str, ind: int) -> None:
        helper = {"int": "_coerce_int", "float": "_coerce_float", "bool": "_coerce_bool"}.get(node.kind)
        if node.kind == "enum" and all(type(m.value) is int for m in node.cls):
            helper = "_coerce_int"
        if helper is not None:
            self.b.line(ind, f"if type({value}) is str: {value} = {helper}({value})")
        elif node.kind == "none" or (node.kind == "optional" and node.args[0].kind not in ("str", "any")):
            self.b.line(ind, f"if {value} == '': {value} = None")

    # -- scalars -------------------------------------------------------------
    def emit_none(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        self.chain(ind, [(f"{value} is not None", self.type_message(node, value))], path, errs)
        return value

    def _exact(self, node: TypeNode, value: str, ind: int, path: str, errs: str, sized: bool) -> str:
        py = {"bool": "bool", "int": "int", "str": "str"}[node.kind]
        checks = [(f"type({value}) is not {py}", self.type_message(node, value))]
        checks += self.constraint_checks(node.constraints, value, sized)
        self.chain(ind, checks, path, errs)
        return value

    def emit_bool(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        return self._exact(node, value, ind, path, errs, sized=False)

    def emit_int(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        return self._exact(node, value, ind, path, errs, sized=False)

    def emit_str(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        return self._exact(node, value, ind, path, errs, sized=True)

    def emit_float(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        out = self.b.var("_r")
        # JSON has one number type: integers are floats too, converted here.
        self.b.line(
            ind,
            f"{out} = {value} if type({value}) is float else _int_to_float({value}) if type({value}) is int else None",
        )
        checks = [(f"{out} is None", self.type_message(node, value))]
        if not self.options.allow_nan:
            # x - x is 0.0 for finite floats and NaN (truthy) for NaN and infinities.
            checks.append((f"{out} - {out}", f"'expected finite number, got ' + _got({value})"))
        checks += self.constraint_checks(node.constraints, out, sized=False, shown=value)
        self.chain(ind, checks, path, errs)
        return out

    def emit_decimal(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        out = self.b.var("_r")
        if self.report:
            self.b.line(ind, f"{out} = _parse_decimal({value}, {self.options.allow_nan})")
            checks = [(f"{out} is None", self.value_message(node, value))]
        else:
            # Strings and ints inline (Decimal's InvalidOperation fails the fast path);
            # floats need parse_decimal's repr() step.
            self.b.line(
                ind,
                f"{out} = _Decimal({value}) if type({value}) is str or type({value}) is int"
                f" else _parse_decimal({value}, {self.options.allow_nan})",
            )
            checks = [(f"{out} is None", self.value_message(node, value))]
            if not self.options.allow_nan:
                checks.append((f"not {out}.is_finite()", self.value_message(node, value)))
        checks += self.constraint_checks(node.constraints, out, sized=False)
        self.chain(ind, checks, path, errs)
        return out

    def _parsed(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        out = self.b.var("_r")
        self.b.line(ind, f"{out} = {_PARSERS[node.kind]}({value}) if type({value}) is str else None")
        checks = [(f"{out} is None", self.value_message(node, value))]
        checks += self.constraint_checks(node.constraints, out, sized=True)
        self.chain(ind, checks, path, errs)
        return out

    emit_bytes = emit_date = emit_time = emit_uuid = _parsed

    def emit_datetime(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        if self.report:
            return self._parsed(node, value, ind, path, errs)
        # The usual date-time inline, without a call: fromisoformat's ValueError (a 30th of
        # February) fails the fast path, and the reporting path's parser says why.
        out = self.b.var("_r")
        self.b.line(ind, f"if type({value}) is str and _plain_datetime({value}) is not None:")
        self.b.line(ind + 1, f"{out} = _fromisoformat({value})")
        self.b.line(ind, "else:")
        self.b.line(ind + 1, f"{out} = _parse_datetime({value}) if type({value}) is str else None")
        checks = [(f"{out} is None", self.value_message(node, value))]
        checks += self.constraint_checks(node.constraints, out, sized=True)
        self.chain(ind, checks, path, errs)
        return out

    def emit_literal(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        tests = []
        for py in (str, int, bool):
            group = frozenset(v for v in node.values if type(v) is py)
            if group:
                tests.append(f"(type({value}) is {py.__name__} and {value} in {self.b.bind(group, '_lit')})")
        if None in node.values:
            tests.append(f"{value} is None")
        self.chain(ind, [(f"not ({' or '.join(tests)})", self.value_message(node, value))], path, errs)
        return value

    def emit_enum(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        out = self.b.var("_r")
        members = self.b.bind({m.value: m for m in node.cls}, "_enum")
        kinds = sorted({type(m.value).__name__ for m in node.cls})
        test = " or ".join(f"type({value}) is {k}" for k in kinds)
        self.b.line(ind, f"{out} = {members}.get({value}) if {test} else None")
        self.chain(ind, [(f"{out} is None", self.value_message(node, value))], path, errs)
        return out

    # -- containers ----------------------------------------------------------
    def _open(self, node: TypeNode, value: str, ind: int, path: str, errs: str, py: str, out: str) -> None:
        """``if type(value) is not py: fail / else:`` leaving the body to the caller."""
        self.b.line(ind, f"if type({value}) is not {py}:")
        self.fail(ind + 1, path, self.type_message(node, value), errs)
        if self.report:
            self.b.line(ind + 1, f"{out} = None")
        self.b.line(ind, "else:")

    def _sequence(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        out = self.b.var("_r")
        item_node = node.args[0]
        self._open(node, value, ind, path, errs, "list", out)
        body = ind + 1
        if item_node.kind == "any":
            self.b.line(body, f"{out} = list({value})")
        elif item_node.kind == "class" and not self.report:
            fast, _ = self.class_ref(item_node.cls)
            item = self.b.var("_x")
            self.b.line(body, f"{out} = [{fast}({item}) for {item} in {value}]")
        else:
            item = self.b.var("_x")
            if self.report:
                parent = self.materialize(body, path)
                index = self.b.var("_i")
                self.b.line(body, f"{out} = []")
                self.b.line(body, f"for {index}, {item} in enumerate({value}):")
                result = self.emit(item_node, item, body + 1, f'f"{{{parent}}}[{{{index}}}]"', errs)
                self.b.line(body + 1, f"{out}.append({result})")
            else:
                mark = len(self.b.lines)
                self.b.line(body, f"for {item} in {value}:")
                result = self.emit(item_node, item, body + 1, path, errs)
                if result == item:  # checks only: copy the list once instead of appending
                    self.b.line(body, f"{out} = list({value})")
                else:
                    self.b.lines.insert(mark, "    " * body + f"{out} = []")
                    self.b.line(body + 1, f"{out}.append({result})")
        if node.kind in ("set", "frozenset"):
            self.b.line(body, f"{out} = _to_set({out}, _{node.kind})")
            self.chain(body, [(f"{out} is None", "'expected hashable items'")], path, errs)
        elif node.kind == "vartuple":
            self.b.line(body, f"{out} = tuple({out})")
        self.chain(body, self.constraint_checks(node.constraints, out, sized=True), path, errs)
        return out

    emit_list = emit_set = emit_frozenset = emit_vartuple = _sequence

    def emit_tuple(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        out = self.b.var("_r")
        count = len(node.args)
        self.b.line(ind, f"if type({value}) is not list or len({value}) != {count}:")
        self.fail(ind + 1, path, self.b.literal(f"expected array of {count} items, got ") + f" + _got({value})", errs)
        if self.report:
            self.b.line(ind + 1, f"{out} = None")
        self.b.line(ind, "else:")
        parent = self.materialize(ind + 1, path)
        results = []
        for i, item_node in enumerate(node.args):
            item = self.b.var("_x")
            self.b.line(ind + 1, f"{item} = {value}[{i}]")
            results.append(self.emit(item_node, item, ind + 1, f"{parent} + '[{i}]'", errs))
        self.b.line(ind + 1, f"{out} = ({''.join(r + ', ' for r in results)})")
        return out

    def emit_dict(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        out = self.b.var("_r")
        self._open(node, value, ind, path, errs, "dict", out)
        body = ind + 1
        key, item = self.b.var("_k"), self.b.var("_x")
        parent = self.materialize(body, path)
        self.b.line(body, f"{out} = {{}}")
        self.b.line(body, f"for {key}, {item} in {value}.items():")
        key_path = f"_key_path({parent}, {key})"
        self.chain(
            body + 1, [(f"type({key}) is not str", f"'expected string key, got ' + _kind({key})")], key_path, errs
        )
        result = self.emit(node.args[0], item, body + 1, key_path, errs)
        self.b.line(body + 1, f"{out}[{key}] = {result}")
        self.chain(body, self.constraint_checks(node.constraints, out, sized=True), path, errs)
        return out

    def emit_class(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        fast, check = self.class_ref(node.cls)
        out = self.b.var("_r")
        if self.report:
            self.b.line(ind, f"{out} = {check}({value}, {path}, {errs})")
        else:
            self.b.line(ind, f"{out} = {fast}({value})")
        return out

    # -- unions --------------------------------------------------------------
    def emit_optional(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        out = self.b.var("_r")
        self.b.line(ind, f"if {value} is None:")
        self.b.line(ind + 1, f"{out} = None")
        self.b.line(ind, "else:")
        result = self.emit(node.args[0], value, ind + 1, path, errs)
        self.b.line(ind + 1, f"{out} = {result}")
        return out

    def emit_union(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        if node.tag_key is not None:
            return self._tagged(node, value, ind, path, errs)
        out = self.b.var("_r")
        # Exact matches first: an int stays an int in int | float, a string
        # becomes a date-time before it is taken as a plain string.
        rank = {"int": 0, "float": 1, "str": 3, "any": 4}
        members = sorted(node.args, key=lambda m: rank.get(m.kind, 2))
        if self.report:
            tried = []
            for depth, member in enumerate(members):
                local = self.b.var("_e")
                self.b.line(ind + depth, f"{local} = []")
                result = self.emit(member, value, ind + depth, path, local)
                self.b.line(ind + depth, f"if not {local}:")
                self.b.line(ind + depth + 1, f"{out} = {result}")
                self.b.line(ind + depth, "else:")
                tried.append(f"({self.b.bind(_consumes(member), '_kinds')}, {local})")
            last = ind + len(members)
            self.b.line(last, f"{out} = None")
            expected = self.b.literal(_expected(node))
            self.b.line(
                last, f"_union_errors({errs}, {path}, {value}, ({''.join(t + ', ' for t in tried)}), {expected})"
            )
            return out
        for depth, member in enumerate(members):
            self.b.line(ind + depth, "try:")
            result = self.emit(member, value, ind + depth + 1, path, errs)
            self.b.line(ind + depth + 1, f"{out} = {result}")
            self.b.line(ind + depth, "except Exception:")
        self.b.line(ind + len(members), "raise _FAIL")
        return out

    def _tagged(self, node: TypeNode, value: str, ind: int, path: str, errs: str) -> str:
        assert node.tag_key is not None
        out = self.b.var("_r")
        tags = self.b.bind(dict(node.tags), "_tags")
        key = self.b.literal(node.tag_key)
        index = self.b.var("_t")
        self._open(node, value, ind, path, errs, "dict", out)
        body = ind + 1
        if self.report:
            self.b.line(body, f"{index} = _tag_index({tags}, {value}.get({key}, _MISSING))")
        else:
            self.b.line(body, f"{index} = {tags}[{value}[{key}]]")
        for i, member in enumerate(node.args):
            self.b.line(body, f"{'if' if i == 0 else 'elif'} {index} == {i}:")
            result = self.emit(member, value, body + 1, path, errs)
            self.b.line(body + 1, f"{out} = {result}")
        self.b.line(body, "else:")
        if self.report:
            self.b.line(body + 1, f"{out} = None")
            allowed = self.b.bind(f"expected one of {[t[0] for t in node.tags]!r}, got ", "_s")
            tag_path = f"_key_path({path}, {key})"
            self.b.line(body + 1, f"if {key} not in {value}:")
            self.b.line(body + 2, f"{errs}.append(({tag_path}, 'required field missing'))")
            self.b.line(body + 1, "else:")
            self.b.line(body + 2, f"{errs}.append(({tag_path}, {allowed} + _got({value}[{key}])))")
        else:
            self.b.line(body + 1, "raise _FAIL")
        return out


def _function_name(prefix: str, cls: type) -> str:
    name = cls.__name__
    return f"{prefix}_{name}" if name.isidentifier() else f"{prefix}_class"


def generate_class(
    description: ClassDescription, options: DecodeOptions, class_ref: ClassRef
) -> tuple[str, dict[str, Any]]:
    """The source and globals of the decoding unit of one dataclass.

    Args:
        description: the dataclass, described.
        options: the decoder settings.
        class_ref: gives the global names of another class's fast and check functions.

    Returns:
        ``(source, globals)``; the source defines ``decode_<Class>``, ``check_<Class>`` and ``make_json``.
    """
    b = SourceBuilder(_RUNTIME)
    cls = b.bind(description.cls, "_cls")
    forbid = description.options.forbid_unknown if options.forbid_unknown is None else options.forbid_unknown
    fields = [f for f in description.fields if f.init]
    known = b.bind(frozenset(f.json_name for f in description.fields), "_known")
    fast_body: list[str] = []
    for report in (False, True):
        emitter = _Emitter(b, options, report, class_ref)
        name = _function_name("check" if report else "decode", description.cls)
        b.line(0, f"def {name}(v, path, errs):" if report else f"def {name}(v):")
        start = len(b.lines)
        b.line(1, "if type(v) is not dict:")
        if report:
            b.line(2, "errs.append((path, 'expected object, got ' + _kind(v)))")
            b.line(2, "return None")
            b.line(1, "n = len(errs)")
        else:
            b.line(2, "raise _FAIL")
        if forbid:
            if report:
                b.line(1, "for k in v:")
                b.line(2, f"if k not in {known}:")
                b.line(3, "errs.append((_key_path(path, k), 'unknown field'))")
            else:
                b.line(1, f"if not {known}.issuperset(v):")
                b.line(2, "raise _FAIL")
        args = []
        for i, f in enumerate(fields):
            key = b.literal(f.json_name)
            raw, out = f"_f{i}", f"_a{i}"
            field_path = f"path + {b.literal(_parsers.key_path('', f.json_name))}"
            if f.required and not report:
                b.line(1, f"{raw} = v[{key}]")
                out = emitter.emit(f.node, raw, 1, field_path, "errs")
            else:
                b.line(1, f"{raw} = v.get({key}, _MISSING)")
                b.line(1, f"if {raw} is _MISSING:")
                if f.required:
                    b.line(2, f"errs.append(({field_path}, 'required field missing'))")
                    b.line(2, f"{out} = None")
                elif f.default_factory is not MISSING:
                    b.line(2, f"{out} = {b.bind(f.default_factory, '_factory')}()")
                else:
                    b.line(2, f"{out} = {b.bind(f.default, '_default')}")
                b.line(1, "else:")
                result = emitter.emit(f.node, raw, 2, field_path, "errs")
                b.line(2, f"{out} = {result}")
            # Positional arguments where __init__ allows them: cheaper than keywords.
            args.append(f"{f.name}={out}" if f.kw_only else out)
        # Positional arguments first: a kw_only field may come before a positional one.
        args.sort(key=lambda arg: "=" in arg)
        call = f"{cls}({', '.join(args)})"
        if report:
            b.line(1, "if len(errs) != n:")
            b.line(2, "return None")
            b.line(1, "try:")
            b.line(2, f"return {call}")
            b.line(1, "except Exception as exc:")
            b.line(2, "errs.append((path, _ctor_message(exc)))")
            b.line(2, "return None")
        elif _plain_construction(description.cls):
            # cls(...) is object.__new__(cls) then cls.__init__(obj, ...) by way of type.__call__'s
            # C code; doing the two steps here runs the very same __init__ (defaults,
            # __post_init__ and frozen included) without that detour (~10% of a small decode).
            init = b.bind(_init_of(description.cls), "_init")
            b.line(1, f"o = _new({cls})")
            b.line(1, f"if {init}(o{''.join(', ' + arg for arg in args)}) is not None:")
            b.line(2, "raise _FAIL  # type.__call__ refuses such an __init__: let the reporting path say so")
            b.line(1, "return o")
        else:
            b.line(1, f"return {call}")
        if not report:
            fast_body = b.lines[start:]
        b.line(0, "")
    _json_entry(b, _function_name("json", description.cls), fast_body)
    return b.source, b.globals


def _json_entry(b: SourceBuilder, name: str, fast_body: list[str]) -> None:
    """``make_json(slow)``: a ``json_<Class>(data)`` that parses and runs the fast path inline.

    The fast path's body is copied into the entry rather than called: one Python call
    less per document, which is ~10% of decoding a small object.  Any exception (invalid
    JSON, a failed check) sends the text to ``slow``, which parses again and reports.
    """
    b.line(0, "def make_json(_slow):")
    b.line(1, f"def {name}(data):")
    b.line(2, "try:")
    b.line(3, "v = _loads(data)")
    b.lines.extend("        " + line for line in fast_body)
    b.line(2, "except Exception:")
    b.line(3, "return _slow(data)")
    b.line(1, f"return {name}")
    b.line(0, "")


def _plain_construction(cls: type) -> bool:
    """Whether ``cls(...)`` is exactly ``object.__new__(cls)`` followed by ``cls.__init__``."""
    call: object = type(cls).__call__  # a metaclass may do more
    new: object = cls.__new__
    return call is type.__call__ and new is object.__new__ and isinstance(_init_of(cls), types.FunctionType)


def _init_of(cls: type) -> object:
    return getattr(cls, "__init__", None)


def generate_root(node: TypeNode, options: DecodeOptions, class_ref: ClassRef) -> tuple[str, dict[str, Any]]:
    """The source and globals of a decoding unit for a type that is not a dataclass.

    Returns:
        ``(source, globals)``; the source defines ``decode_root``, ``check_root`` and ``make_json``.
    """
    b = SourceBuilder(_RUNTIME)
    fast_body: list[str] = []
    for report in (False, True):
        emitter = _Emitter(b, options, report, class_ref)
        b.line(0, "def check_root(v, path, errs):" if report else "def decode_root(v):")
        start = len(b.lines)
        result = emitter.emit(node, "v", 1, "path", "errs")
        b.line(1, f"return {result}")
        if not report:
            fast_body = b.lines[start:]
        b.line(0, "")
    _json_entry(b, "json_root", fast_body)
    return b.source, b.globals


@dataclasses.dataclass
class _Unit:
    fast: Callable[[Any], Any]
    check: Callable[[Any, str, list[tuple[str, str]]], Any]
    make_json: Callable[[Callable[[Any], Any]], Callable[[Any], Any]]
    source: str
    classes: list[type]


class DecoderFactory:
    """Compiles and keeps the decoding units of one set of :class:`DecodeOptions`.

    Each class is compiled once per factory; cross-class references are bound
    after compilation, so cycles between classes are fine.
    """

    def __init__(self, options: DecodeOptions) -> None:
        self.options = options
        self._units: dict[type, _Unit] = {}

    def class_unit(self, cls: type) -> _Unit:
        """The compiled unit of dataclass ``cls``, compiling it (and what it uses) if needed."""
        unit = self._units.get(cls)
        if unit is not None:
            return unit
        description = describe_class(cls)
        refs: dict[type, tuple[str, str]] = {}
        source, globals_ = generate_class(description, self.options, self._recorder(refs))
        compile_unit(source, globals_, f"decode {description.name}")
        unit = _Unit(
            globals_[_function_name("decode", cls)],
            globals_[_function_name("check", cls)],
            globals_["make_json"],
            source,
            list(refs),
        )
        self._units[cls] = unit
        self._bind(refs, globals_)
        return unit

    def root_unit(self, node: TypeNode) -> _Unit:
        """A compiled unit for ``node``: the class's own unit for dataclasses."""
        if node.kind == "class":
            return self.class_unit(node.cls)
        refs: dict[type, tuple[str, str]] = {}
        source, globals_ = generate_root(node, self.options, self._recorder(refs))
        compile_unit(source, globals_, "decode root")
        self._bind(refs, globals_)
        return _Unit(globals_["decode_root"], globals_["check_root"], globals_["make_json"], source, list(refs))

    def sources(self, unit: _Unit) -> str:
        """The generated source of ``unit`` and of every class it reaches."""
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
    def _recorder(refs: dict[type, tuple[str, str]]) -> ClassRef:
        def class_ref(cls: type) -> tuple[str, str]:
            names = refs.get(cls)
            if names is None:
                names = refs[cls] = (f"_decode_{len(refs)}", f"_check_{len(refs)}")
            return names

        return class_ref

    def _bind(self, refs: dict[type, tuple[str, str]], globals_: dict[str, Any]) -> None:
        for cls, (fast, check) in refs.items():
            unit = self.class_unit(cls)
            globals_[fast] = unit.fast
            globals_[check] = unit.check
