"""The public decoder: :class:`Decoder` and the :func:`decode` shortcut.

Decoding is two steps: ``orjson.loads`` parses, then the generated function of
the target type validates and builds.  The generated fast path stops at the
first problem; only then does the reporting path run, collecting every problem
with its JSON path into one :class:`~kowito_json.ValidationError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar, overload

import orjson

from ._decode_gen import DecoderFactory
from ._describe import TypeNode, describe_class, describe_type
from .errors import UnsupportedType, ValidationError
from .options import DecodeOptions

__all__ = ["Decoder", "decode", "decoder_for"]

T = TypeVar("T")

# Generated functions depend only on the class and the options: one factory per
# set of options is shared by every decoder (the deliberate module registry).
_FACTORIES: dict[DecodeOptions, DecoderFactory] = {}
# Keyed by (type, forbid_unknown, allow_nan), the arguments as given: building a
# DecodeOptions per call to look one up cost ~2 us, more than decoding a small object.
_DECODERS: dict[tuple[Any, bool | None, bool], Decoder[Any]] = {}
# decode()'s shortcut for the default settings: type -> the decoder's JSON entry.
_DEFAULT_ENTRIES: dict[Any, Callable[[bytes | bytearray | str], Any]] = {}

_SEQUENCE_KINDS = frozenset({"list", "set", "frozenset", "vartuple"})

# orjson reads integers outside [-2**63, 2**64) as floats (JSONTestSuite's
# i_number_too_big_pos_int gives 1e+20).  A typed ``int`` notices the float and falls
# back to the standard library, ``Any`` cannot; nineteen digits in a row is the
# cheapest sign that the text may hold such an integer.
_LONG_DIGITS = re.compile(r"[0-9]{19}")
_LONG_DIGITS_BYTES = re.compile(rb"[0-9]{19}")


def _reaches_any(node: TypeNode, seen: set[type]) -> bool:
    """Whether ``Any`` occurs anywhere in ``node``, dataclass fields included."""
    if node.kind == "any":
        return True
    if node.kind == "class":
        if node.cls in seen:
            return False
        seen.add(node.cls)
        return any(_reaches_any(f.node, seen) for f in describe_class(node.cls).fields)
    return any(_reaches_any(arg, seen) for arg in node.args)


def _factory(options: DecodeOptions) -> DecoderFactory:
    factory = _FACTORIES.get(options)
    if factory is None:
        factory = _FACTORIES[options] = DecoderFactory(options)
    return factory


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Decoder(Generic[T]):
    """Validates JSON against type ``T`` and builds ``T`` values, with generated code.

    Example:
        >>> Decoder(Point).decode(b'{"x": 1, "y": 2}')
        Point(x=1, y=2)

    Attributes:
        type: the target type.
        options: the settings the generated code was built with.
    """

    def __init__(
        self, type: Any, *, forbid_unknown: bool | None = None, allow_nan: bool = False, coerce_strings: bool = False
    ) -> None:
        """Build (or reuse) the generated decoder of ``type``.

        Args:
            type: the target type (a dataclass, or any supported annotation).
            forbid_unknown: reject JSON members no field takes, in every class
                (``None``: each class's :func:`~kowito_json.config` decides).
            allow_nan: accept NaN and infinities (from Python objects; JSON text has none).
            coerce_strings: also accept numbers, booleans and null written as
                strings, as in query strings and form fields.

        Raises:
            UnsupportedType: if ``type`` or a type inside it is not supported.
        """
        self.type = type
        self.options = DecodeOptions(forbid_unknown=forbid_unknown, allow_nan=allow_nan, coerce_strings=coerce_strings)
        self._node = describe_type(type)
        self._unit = _factory(self.options).root_unit(self._node)
        self._fast = self._unit.fast
        self._check = self._unit.check
        self._query: Decoder[T] | None = None
        self._exact_ints = _reaches_any(self._node, set())
        self._decode_json = self._json_entry()

    @property
    def source(self) -> str:
        """The generated Python source of this decoder and the classes it reaches."""
        return _factory(self.options).sources(self._unit)

    def decode(self, data: bytes | bytearray | str) -> T:
        """Parse and validate JSON ``data``.

        Raises:
            ValidationError: with every problem found (invalid JSON, wrong types,
                missing fields, failed constraints), each with its JSON path.
        """
        return self._decode_json(data)  # type: ignore[no-any-return]

    def _json_entry(self) -> Callable[[bytes | bytearray | str], Any]:
        """The function behind :meth:`decode`, with this decoder's parts bound as locals.

        :func:`decode` calls it directly: one call less per document than the method.
        """
        fast, slow, loads = self._fast, self._decode_slow, orjson.loads
        if not self._exact_ints:
            # Generated: orjson.loads and the fast path in one function; any failure goes to slow.
            return self._unit.make_json(slow)

        def decode_json_exact(data: bytes | bytearray | str) -> Any:
            try:
                value = loads(data)
                if _long_digits(data):
                    try:
                        value = json.loads(data)  # orjson accepted it: valid JSON, no NaN
                    except RecursionError:  # nesting the standard library cannot follow: keep orjson's value
                        pass
                return fast(value)
            except Exception:
                return slow(data)

        return decode_json_exact

    def _decode_slow(self, data: bytes | bytearray | str) -> T:
        """After the fast path failed: parse again (big integers exact) and report every problem."""
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValidationError([("$", f"invalid JSON: {exc}")]) from None
        # orjson reads integers past 64 bits as floats; the standard library keeps them exact.
        try:
            value = json.loads(data, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            pass
        return self._report(value)

    def from_builtins(self, value: Any) -> T:
        """Validate an already-parsed value (dicts, lists, str, int, float, bool, None).

        Raises:
            ValidationError: with every problem found, each with its JSON path.
        """
        try:
            return self._fast(value)  # type: ignore[no-any-return]
        except Exception:
            return self._report(value)

    def from_query(self, pairs: Iterable[tuple[str, str]] | Mapping[str, str | list[str]]) -> T:
        """Build a dataclass ``T`` from string-valued query parameters.

        Fields typed as lists, tuples or sets take every value given for their
        name; other fields take the last one.  Strings are converted for
        numbers, booleans (``true/false``, ``1/0``, ``yes/no``, ``on/off``) and
        ``None`` (the empty string).

        Raises:
            UnsupportedType: if ``T`` is not a dataclass.
            ValidationError: naming each parameter that is missing or malformed
                (``$.limit: expected integer, got string``).
        """
        if self._node.kind != "class":
            raise UnsupportedType(f"from_query needs a dataclass, not {self.type!r}")
        if self._query is None:
            options = self.options
            self._query = Decoder(
                self.type, forbid_unknown=options.forbid_unknown, allow_nan=options.allow_nan, coerce_strings=True
            )
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        many = {
            f.json_name
            for f in describe_class(self._node.cls).fields
            if (f.node.args[0] if f.node.kind == "optional" else f.node).kind in _SEQUENCE_KINDS
        }
        grouped: dict[str, Any] = {}
        for key, value in items:
            values = value if isinstance(value, list) else [value]
            if key in many:
                grouped.setdefault(key, []).extend(values)
            elif values:
                grouped[key] = values[-1]
        return self._query.from_builtins(grouped)

    def _report(self, value: Any) -> T:
        errors: list[tuple[str, str]] = []
        try:
            result = self._check(value, "$", errors)
        except RecursionError:
            raise ValidationError([("$", "nesting too deep")]) from None
        if errors:
            raise ValidationError(errors)
        return result  # type: ignore[no-any-return]


def _long_digits(data: bytes | bytearray | str) -> bool:
    if isinstance(data, str):
        return _LONG_DIGITS.search(data) is not None
    return _LONG_DIGITS_BYTES.search(data) is not None


def decoder_for(type: Any, *, forbid_unknown: bool | None = None, allow_nan: bool = False) -> Decoder[Any]:
    """The shared :class:`Decoder` of ``type`` with these settings, built on first use."""
    key = (type, forbid_unknown, allow_nan)
    decoder = _DECODERS.get(key)
    if decoder is None:
        decoder = _DECODERS[key] = Decoder(type, forbid_unknown=forbid_unknown, allow_nan=allow_nan)
        if forbid_unknown is None and not allow_nan:
            _DEFAULT_ENTRIES[type] = decoder._decode_json
    return decoder


@overload
def decode(
    data: bytes | bytearray | str,
    *,
    type: type[T],
    forbid_unknown: bool | None = ...,
    allow_nan: bool = ...,
) -> T: ...
@overload
def decode(
    data: bytes | bytearray | str, *, type: Any, forbid_unknown: bool | None = ..., allow_nan: bool = ...
) -> Any: ...
def decode(
    data: bytes | bytearray | str,
    *,
    type: Any,
    forbid_unknown: bool | None = None,
    allow_nan: bool = False,
) -> Any:
    """Parse JSON ``data`` and validate it as ``type``.

    Args:
        data: JSON text.
        type: the target type.
        forbid_unknown: reject unknown members (``None``: per-class setting).
        allow_nan: accept NaN and infinities.

    Returns:
        The decoded value.

    Raises:
        ValidationError: with every problem found, each with its JSON path.
        UnsupportedType: if ``type`` is not supported.
    """
    if forbid_unknown is None and allow_nan is False:  # the usual call: one lookup, no key to build
        entry = _DEFAULT_ENTRIES.get(type)
        if entry is not None:
            return entry(data)
    return decoder_for(type, forbid_unknown=forbid_unknown, allow_nan=allow_nan)._decode_json(data)
