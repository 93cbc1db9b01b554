"""The public encoder: :class:`Encoder` and the :func:`encode` shortcut."""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Callable, Iterable
from itertools import filterfalse, repeat
from operator import is_
from typing import Any, Final, Generic, TypeVar

import orjson

from ._describe import describe_type, is_struct
from ._encode_gen import EncoderFactory, is_native, orjson_default
from .errors import EncodeError, UnsupportedType

__all__ = ["Encoder", "encode", "encoder_for"]

T = TypeVar("T")

_PASSTHROUGH_DATACLASS = orjson.OPT_PASSTHROUGH_DATACLASS
_dumps = orjson.dumps

# Generated functions are pure functions of the class, so every encoder shares
# them: this registry is the one deliberate piece of module state.
_FACTORY = EncoderFactory()
_ENCODERS: dict[Any, Encoder[Any]] = {}
# Types whose values orjson writes, natively, exactly as kowito-json does: scalars that
# hold nothing, and the dataclasses whose Encoder is native (added as they are built).
# encode() hands these, and lists, tuples and dicts of them, to orjson as they are.
# (Not datetime.time: Encoder(time) writes isoformat(), see _encode_gen.)
_NATIVE_VALUES: set[Any] = {
    str, int, float, bool, type(None), datetime.datetime, datetime.date, uuid.UUID, decimal.Decimal,
}  # fmt: skip
# What _default calls for a value of each type: the to_builtins of every dataclass met
# (orjson calls default= once per dataclass with OPT_PASSTHROUGH_DATACLASS), and the
# exact types orjson_default converts with one builtin, without its isinstance chain.
_CONVERTERS: dict[type, Callable[[Any], Any]] = {decimal.Decimal: str, set: list, frozenset: list}
_DECIMAL: Final = decimal.Decimal


class Encoder(Generic[T]):
    """Encodes values of type ``T`` to JSON bytes with generated code.

    Example:
        >>> Encoder(Point).encode(Point(x=1, y=2))
        b'{"x":1,"y":2}'

    Attributes:
        type: the type encoded.
        native: whether orjson's own dataclass serialization is used (no option
            of ``T`` needs generated code).
    """

    def __init__(self, type: Any) -> None:
        """Build (or reuse) the generated encoder of ``type``.

        Raises:
            UnsupportedType: if ``type`` or a type inside it is not supported.
        """
        self.type = type
        node = describe_type(type)
        self._unit = _FACTORY.root_unit(node)
        self.native = is_native(node)
        self._to_builtins = self._unit.function

    @property
    def source(self) -> str:
        """The generated Python source of this encoder and the classes it reaches."""
        return _FACTORY.sources(self._unit)

    def to_builtins(self, value: T) -> Any:
        """``value`` as dicts and lists with JSON names, ready for ``orjson.dumps``.

        Scalars orjson writes natively (datetime, date, time, UUID, enums) are
        left as they are; Decimal becomes a string, bytes base64, sets lists.

        Raises:
            EncodeError: if ``value`` does not match the encoder's type.
        """
        try:
            return self._to_builtins(value)
        except Exception as exc:
            raise EncodeError(f"cannot encode {type(value).__name__} as {self._name}: {exc}") from exc

    def encode(self, value: T) -> bytes:
        """``value`` as compact UTF-8 JSON.

        Raises:
            EncodeError: if ``value`` does not match the encoder's type.
        """
        try:
            if self.native:
                return _dumps(value, default=_default)
            return _dumps(self._to_builtins(value), default=_default, option=_PASSTHROUGH_DATACLASS)
        except Exception as exc:
            return self._encode_slow(value, exc)

    def _encode_slow(self, value: T, first: Exception) -> bytes:
        # orjson refuses integers past 64 bits: write those exactly, the rest as orjson does.
        try:
            return _dumps_exact(self.to_builtins(value))
        except EncodeError:
            raise
        except Exception as exc:
            raise EncodeError(f"cannot encode {type(value).__name__} as {self._name}: {first}") from exc

    @property
    def _name(self) -> str:
        return getattr(self.type, "__qualname__", None) or repr(self.type)


def _json_default(value: Any) -> Any:
    """``default=`` for the standard library: what orjson writes natively, written the same way."""
    import datetime
    import enum
    import uuid

    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if is_struct(type(value)):
        return encoder_for(type(value)).to_builtins(value)
    return orjson_default(value)


def encoder_for(type: Any) -> Encoder[Any]:
    """The shared :class:`Encoder` of ``type``, built on first use."""
    encoder = _ENCODERS.get(type)
    if encoder is None:
        encoder = _ENCODERS[type] = Encoder(type)
        if is_struct(type):
            _CONVERTERS[type] = encoder.to_builtins
            if encoder.native:
                _NATIVE_VALUES.add(type)
    return encoder


def _default(value: Any) -> Any:
    """``default=`` for ``orjson.dumps``: :func:`orjson_default`, with a lookup first for the usual types."""
    # Decimal, the type orjson hands over most, without the lookup and the converter's call
    # (_CONVERTERS[Decimal] is str): measured 6% of encoding the benchmark's 1 000 orders.
    if type(value) is _DECIMAL:
        return str(value)
    convert = _CONVERTERS.get(type(value))
    if convert is not None:
        return convert(value)
    return orjson_default(value)


_BUILTINS: Final = frozenset({dict, list, tuple, str, int, float, bool, type(None)})


def encode(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON.

    Dataclass instances use the generated encoder of their class; other values
    (lists, dicts, scalars) go to orjson, with dataclasses inside them encoded by
    their generated encoders.

    Raises:
        EncodeError: if the value (or something inside it) cannot be encoded.
    """
    tp = type(value)
    if tp in _NATIVE_VALUES:  # a native dataclass (or a scalar): orjson alone, no Python in between
        try:
            return _dumps(value, default=_default)
        except Exception as exc:
            return _encode_failed(value, exc)
    encoder = _ENCODERS.get(tp)
    if encoder is not None:
        return encoder.encode(value)
    # dataclasses.is_dataclass costs more than encoding a small dict: skip it for builtins.
    if tp not in _BUILTINS and is_struct(tp):
        return encoder_for(tp).encode(value)
    try:
        if (tp is list or tp is tuple or tp is dict) and _all_native(value.values() if tp is dict else value):
            # Every item is written natively: orjson's own dataclass path, no default= call per item.
            return _dumps(value, default=_default)
        if tp is list or tp is tuple:
            converted = _one_class_builtins(value)
            if converted is not None:
                return _dumps(converted, default=_default, option=_PASSTHROUGH_DATACLASS)
        return _dumps(value, default=_default, option=_PASSTHROUGH_DATACLASS)
    except Exception as exc:
        return _encode_failed(value, exc)


def _one_class_builtins(items: list[Any] | tuple[Any, ...]) -> list[Any] | None:
    """``items`` through their generated encoder, when all are of one dataclass that has one.

    A list of slots dataclasses, say: one generated call per item instead of
    orjson's default= hook reaching the same function through two more calls.
    ``None`` otherwise, and on any error, so that the general path reports it.
    """
    if not items:
        return None
    kind = type(items[0])
    encoder = _ENCODERS.get(kind)
    if encoder is None or encoder.native or not all(map(is_, map(type, items), repeat(kind))):
        return None
    convert = encoder._to_builtins
    try:
        return [convert(item) for item in items]
    except Exception:
        return None


def _all_native(items: Iterable[Any]) -> bool:
    """Whether every item's type is in ``_NATIVE_VALUES``, meeting unseen dataclasses on the way.

    ``items`` is iterated more than once: a list, a tuple or a dict's values, not an iterator.

    Stops at the first other type (a dict, a dataclass with options): a list of
    dicts costs one look, not a scan.
    """
    while True:
        # The usual answer first, in one C loop (issuperset stops at the first miss): a third
        # less than the filterfalse below, which finds which type missed.
        if _NATIVE_VALUES.issuperset(map(type, items)):
            return True
        other = next(filterfalse(_NATIVE_VALUES.__contains__, map(type, items)), None)
        if other is None:
            return True
        if other in _ENCODERS or other in _BUILTINS or not is_struct(other):
            return False
        try:
            encoder_for(other)  # first meeting: a native class joins _NATIVE_VALUES
        except UnsupportedType:
            return False  # the generic path reports it as it always did


def _encode_failed(value: Any, exc: Exception) -> bytes:
    encoder = _ENCODERS.get(type(value))
    if encoder is not None:
        return encoder._encode_slow(value, exc)
    # orjson refuses integers past 64 bits: write those exactly, the rest as orjson does.
    try:
        return _dumps_exact(value)
    except Exception:
        raise EncodeError(f"cannot encode {type(value).__name__}: {exc}") from exc


# The integers orjson writes: 64-bit signed and unsigned.
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1


def _dumps_exact(value: Any) -> bytes:
    """JSON for ``value`` byte for byte as orjson writes it, except integers past 64 bits, written exactly.

    The slow path of :func:`encode` (orjson refused a big integer somewhere): containers
    are walked here, every other value goes to orjson, so floats, strings and datetimes
    come out the same as on the fast path (the standard library writes ``1e-07``, orjson
    ``1e-7``).
    """
    kind = type(value)
    if kind is int:
        return str(value).encode() if not _INT_MIN <= value <= _INT_MAX else _dumps(value)
    if kind is list or kind is tuple:
        return b"[" + b",".join([_dumps_exact(item) for item in value]) + b"]"
    if kind is dict:
        return b"{" + b",".join([_dumps(str(k)) + b":" + _dumps_exact(v) for k, v in value.items()]) + b"}"
    if is_struct(kind):
        return _dumps_exact(encoder_for(kind).to_builtins(value))  # its encoder's checks and names
    try:
        return _dumps(value, default=_default)
    except Exception:
        converted = _json_default(value)
        if converted is value:
            raise
        return _dumps_exact(converted)
