"""The public encoder: :class:`Encoder` and the :func:`encode` shortcut."""

from __future__ import annotations

import json
from typing import Any, Final, Generic, TypeVar

import orjson

from ._describe import describe_type, is_struct
from ._encode_gen import EncoderFactory, is_native, orjson_default
from .errors import EncodeError

__all__ = ["Encoder", "encode", "encoder_for"]

T = TypeVar("T")

_PASSTHROUGH_DATACLASS = orjson.OPT_PASSTHROUGH_DATACLASS

# Generated functions are pure functions of the class, so every encoder shares
# them: this registry is the one deliberate piece of module state.
_FACTORY = EncoderFactory()
_ENCODERS: dict[Any, Encoder[Any]] = {}


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
                return orjson.dumps(value, default=orjson_default)
            return orjson.dumps(self._to_builtins(value), default=orjson_default, option=_PASSTHROUGH_DATACLASS)
        except Exception as exc:
            return self._encode_slow(value, exc)

    def _encode_slow(self, value: T, first: Exception) -> bytes:
        # orjson refuses integers past 64 bits; the standard library writes them exactly.
        try:
            text = json.dumps(self.to_builtins(value), default=_json_default, ensure_ascii=False, separators=(",", ":"))
        except EncodeError:
            raise
        except Exception as exc:
            raise EncodeError(f"cannot encode {type(value).__name__} as {self._name}: {first}") from exc
        return text.encode()

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
    return encoder


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
    encoder = _ENCODERS.get(tp)
    if encoder is not None:
        return encoder.encode(value)
    # dataclasses.is_dataclass costs more than encoding a small dict: skip it for builtins.
    if tp not in _BUILTINS and is_struct(tp):
        return encoder_for(tp).encode(value)
    try:
        return orjson.dumps(value, default=orjson_default, option=_PASSTHROUGH_DATACLASS)
    except Exception as exc:
        try:
            text = json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))
        except Exception:
            raise EncodeError(f"cannot encode {type(value).__name__}: {exc}") from exc
        return text.encode()
