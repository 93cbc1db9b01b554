"""The type registry: which codec reads and writes each PostgreSQL type.

:data:`DEFAULT_TYPES` is the one deliberate module-level registry; every
connection works on its own :meth:`TypeRegistry.copy`, so registering a user
type on one connection never leaks into another.

Result columns use the binary format when the registry has a binary decoder
for the column type and text otherwise, so unknown types (enums, domains over
unknown types, user types) come back as ``str``; types listed in
:attr:`TypeRegistry.text_results` (numeric: ``Decimal`` parses its text in C, a
tenth of the cost of rebuilding it from base-10000 digits) come back in text.  Parameters are encoded by
the type the server inferred for each ``$n``: binary where it pays and the
Python value fits, the text input form otherwise.  NULL is ``None`` both ways.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import _codecs as c
from . import oids, ranges
from ._codecs import PG_EPOCH_UTC
from ._records import make_record_binary, make_record_text
from .errors import DataError

__all__ = ["DEFAULT_TYPES", "STR_PARAM", "Decoder", "Encoder", "ParamEncoder", "TypeRegistry"]

#: Turns a column's raw bytes into a Python value.
Decoder = Callable[[bytes], Any]
#: Turns a Python value into a parameter's bytes.
Encoder = Callable[[Any], bytes]


class ParamEncoder:
    """How to send one parameter type.

    Attributes:
        accepts: Python types the binary encoder takes (``None``: any type).
        encode: The encoder for those types.
        format: 1 if ``encode`` produces binary, 0 for text.
    """

    __slots__ = ("accepts", "encode", "format")

    def __init__(self, accepts: tuple[type, ...] | None, encode: Encoder, format: int) -> None:
        self.accepts = accepts
        self.encode = encode
        self.format = format


_TEXT_PARAM = ParamEncoder(None, c.encode_text, 0)


def _str_param(value: Any) -> bytes:
    return value.encode() if type(value) is str else c.encode_text(value)


_STR_PARAM = ParamEncoder(None, _str_param, 0)
#: How a parameter of a text-like or unknown type is sent (text format; ``str`` as UTF-8).
STR_PARAM = _STR_PARAM


def _array_param(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else c.array_literal(value).encode()


class TypeRegistry:
    """Decoders and encoders by type OID, plus the session time zone timestamptz values are shown in."""

    def __init__(self) -> None:
        self.binary: dict[int, Decoder] = {}
        self.text: dict[int, Decoder] = {}
        self.params: dict[int, ParamEncoder] = {}
        self.tz: tzinfo = UTC
        self.fixed_epoch: datetime | None = PG_EPOCH_UTC
        #: Types read in text format even though a binary decoder exists (arrays, records
        #: and ranges of them still use the binary one).
        self.text_results: set[int] = set()

    def copy(self) -> TypeRegistry:
        """Return an independent copy (the timestamptz and array codecs are rebuilt to use the copy)."""
        new = TypeRegistry()
        new.binary = dict(self.binary)
        new.text = dict(self.text)
        new.params = dict(self.params)
        new.tz = self.tz
        new.fixed_epoch = self.fixed_epoch
        new.text_results = set(self.text_results)
        new._install_context_codecs()
        return new

    def set_timezone(self, name: str) -> None:
        """Show timestamptz values in the IANA zone ``name`` (the server's ``TimeZone`` parameter)."""
        try:
            self.tz = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            self.tz = UTC
        utc_aliases = ("UTC", "Etc/UTC", "GMT", "Etc/GMT", "UCT", "Etc/UCT", "Universal", "Zulu", "Etc/Zulu")
        self.fixed_epoch = PG_EPOCH_UTC.astimezone(self.tz) if name in utc_aliases else None

    def _get_tz(self) -> tzinfo:
        return self.tz

    def _get_fixed_epoch(self) -> datetime | None:
        return self.fixed_epoch

    def _install_context_codecs(self) -> None:
        # Codecs that read state of this registry close over *this* instance.
        self.binary[oids.TIMESTAMPTZ] = c.make_timestamptz_binary(self._get_tz, self._get_fixed_epoch)
        self.text[oids.TIMESTAMPTZ] = c.make_timestamptz_text(self._get_tz)
        # Ranges find their bounds' codecs in this registry when decoding (timestamptz follows the zone).
        for range_oid, elem in oids.RANGE_ELEMENT.items():
            self.binary[range_oid] = ranges.make_range_binary(self.binary.get, elem)
            self.text[range_oid] = ranges.make_range_text(self.text.get, elem)
        self.binary[oids.RECORD] = make_record_binary(self.binary.get)
        for multirange_oid, range_oid in oids.MULTIRANGE_OF.items():
            self.binary[multirange_oid] = ranges.make_multirange_binary(self.binary[range_oid])
            self.text[multirange_oid] = ranges.make_multirange_text(self.text[range_oid])
        array_binary = c.make_array_binary(self.binary.get)
        for array_oid, elem in oids.ELEMENT_OF.items():
            if elem in self.binary:
                self.binary[array_oid] = array_binary
            if elem in self.text:
                self.text[array_oid] = c.make_array_text(self.text[elem])

    def register(
        self,
        oid: int,
        *,
        text: Decoder | None = None,
        binary: Decoder | None = None,
        param: ParamEncoder | None = None,
        array_oid: int | None = None,
    ) -> None:
        """Register codecs for a type (user types, or to override a built-in).

        Args:
            oid: The type OID.
            text: Decoder of the type's text output.
            binary: Decoder of the type's binary output (used for results when present).
            param: Encoder for parameters of this type.
            array_oid: The OID of the array type, to decode arrays of it too.
        """
        if text is not None:
            self.text[oid] = text
        if binary is not None:
            self.binary[oid] = binary
            self.text_results.discard(oid)  # a binary decoder registered on purpose is used
        if param is not None:
            self.params[oid] = param
        if array_oid is not None:
            if text is not None:
                self.text[array_oid] = c.make_array_text(text)
            if binary is not None:
                self.binary[array_oid] = c.make_array_binary(self.binary.get)

    def column_codec(self, oid: int) -> tuple[int, Decoder]:
        """Return ``(format, decoder)`` for a result column: binary if possible, else text."""
        if oid in self.text_results and oid in self.text:
            return 0, self.text[oid]
        decoder = self.binary.get(oid)
        if decoder is not None:
            return 1, decoder
        return 0, self.text.get(oid, c.text_any)

    def text_decoder(self, oid: int) -> Decoder:
        """Return the decoder for a column in text format (unknown types decode to ``str``)."""
        return self.text.get(oid, c.text_any)

    def param_encoder(self, oid: int) -> ParamEncoder:
        """Return how to send a parameter the server typed as ``oid``."""
        encoder = self.params.get(oid)
        if encoder is not None:
            return encoder
        if oid in oids.ELEMENT_OF:
            return _TEXT_PARAM
        return _STR_PARAM


def encode_params(encoders: Sequence[ParamEncoder], params: Sequence[Any]) -> tuple[list[int], list[bytes | None]]:
    """Encode parameter values for Bind.

    Args:
        encoders: One encoder per ``$n``, from :meth:`TypeRegistry.param_encoder`.
        params: The values.

    Returns:
        The format code and the bytes (``None`` for NULL) of each parameter.

    Raises:
        DataError: The number of values does not match the statement.
    """
    if len(params) != len(encoders):
        raise DataError({"M": f"the statement takes {len(encoders)} parameters, {len(params)} given", "C": "08P01"})
    formats: list[int] = []
    values: list[bytes | None] = []
    for enc, value in zip(encoders, params, strict=True):
        if value is None:
            formats.append(0)
            values.append(None)
            continue
        accepts = enc.accepts
        if accepts is None or type(value) in accepts:
            try:
                values.append(enc.encode(value))
                formats.append(enc.format)
                continue
            except (struct.error, OverflowError, AttributeError, TypeError):
                pass  # out of range or wrong shape: let the server judge the text form
        formats.append(0)
        values.append(c.encode_text(value))
    return formats, values


def _default_registry() -> TypeRegistry:
    reg = TypeRegistry()
    binary = {
        oids.BOOL: c.bool_binary,
        oids.INT2: c.int2_binary,
        oids.INT4: c.int4_binary,
        oids.INT8: c.int8_binary,
        oids.OID: c.oid_binary,
        oids.FLOAT4: c.float4_binary,
        oids.FLOAT8: c.float8_binary,
        oids.NUMERIC: c.numeric_binary,
        oids.TEXT: c.text_any,
        oids.VARCHAR: c.text_any,
        oids.BPCHAR: c.text_any,
        oids.NAME: c.text_any,
        oids.CHAR: c.char_binary,
        oids.BYTEA: c.bytea_binary,
        oids.DATE: c.date_binary,
        oids.TIME: c.time_binary,
        oids.TIMETZ: c.timetz_binary,
        oids.TIMESTAMP: c.timestamp_binary,
        oids.INTERVAL: c.interval_binary,
        oids.UUID: c.uuid_binary,
        oids.JSON: c.json_binary,
        oids.JSONB: c.jsonb_binary,
        oids.INET: c.inet_binary,
        oids.CIDR: c.inet_binary,
    }
    text = {
        oids.BOOL: c.bool_text,
        oids.INT2: c.int_text,
        oids.INT4: c.int_text,
        oids.INT8: c.int_text,
        oids.OID: c.int_text,
        oids.FLOAT4: c.float_text,
        oids.FLOAT8: c.float_text,
        oids.NUMERIC: c.numeric_text,
        oids.BYTEA: c.bytea_text,
        oids.DATE: c.date_text,
        oids.TIME: c.time_text,
        oids.TIMETZ: c.time_text,
        oids.TIMESTAMP: c.timestamp_text,
        oids.INTERVAL: c.interval_text,
        oids.UUID: c.uuid_text,
        oids.JSON: c.jsonb_text,
        oids.JSONB: c.jsonb_text,
        oids.INET: c.inet_text,
        oids.CIDR: c.cidr_text,
        oids.TEXT: c.text_any,
        oids.VARCHAR: c.text_any,
        oids.BPCHAR: c.text_any,
        oids.NAME: c.text_any,
        oids.CHAR: c.text_any,
    }
    reg.binary.update(binary)
    reg.text.update(text)
    reg.text_results.add(oids.NUMERIC)
    ints = (int,)
    reg.params.update(
        {
            oids.BOOL: ParamEncoder((bool,), c.encode_bool, 1),
            oids.INT2: ParamEncoder(ints, c.encode_int2, 1),
            oids.INT4: ParamEncoder(ints, c.encode_int4, 1),
            oids.INT8: ParamEncoder(ints, c.encode_int8, 1),
            oids.OID: ParamEncoder((), c.encode_text, 0),
            oids.FLOAT4: ParamEncoder((float, int), c.encode_float4, 1),
            oids.FLOAT8: ParamEncoder((float, int), c.encode_float8, 1),
            oids.NUMERIC: ParamEncoder((Decimal, int, float), c.encode_text, 0),
            oids.BYTEA: ParamEncoder((bytes, bytearray, memoryview), c.encode_bytes, 1),
            oids.UUID: ParamEncoder((UUID,), c.encode_uuid, 1),
            oids.JSON: ParamEncoder(None, c.encode_json_text, 0),
            oids.JSONB: ParamEncoder(None, c.encode_jsonb, 1),
        }
    )
    reg.params.update({oid: ParamEncoder(None, ranges.encode_range, 0) for oid in oids.RANGE_ELEMENT})
    # A list of ranges is a multirange to the generic text encoder; for a range *array* say so.
    range_arrays = [arr for arr, elem in oids.ELEMENT_OF.items() if elem in oids.RANGE_ELEMENT]
    reg.params.update({oid: ParamEncoder(None, _array_param, 0) for oid in range_arrays})
    # Anonymous records (ROW(...), a table's row type not registered): tuples.
    reg.text[oids.RECORD] = make_record_text()
    reg.params.update({oid: ParamEncoder(None, ranges.encode_multirange, 0) for oid in oids.MULTIRANGE_OF})
    return reg.copy()  # the copy installs the codecs that read its own time zone and array table


#: The built-in codecs; connections copy it.
DEFAULT_TYPES = _default_registry()
