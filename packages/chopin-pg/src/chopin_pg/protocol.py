"""The PostgreSQL frontend/backend wire protocol (version 3.0), without I/O.

This module holds the frontend message encoders (functions returning ``bytes``)
and :class:`MessageParser`, which takes bytes from the server and returns
backend messages, either raw ``(tag, body)`` pairs for the hot path or typed
event objects.  Nothing here touches a socket or a clock.

References are to the PostgreSQL 15 documentation, chapter 55 "Frontend/Backend
Protocol": §55.7 "Message Formats" for every layout below, §55.2 "Message Flow"
for when each message is sent.

How the parser works: bytes are appended to one ``bytearray``; a read offset
walks it.  Each backend message is a one-byte tag and a four-byte length that
counts itself, so a message is complete when ``len(buf) - offset >= 1 + length``.
A length below 4 or above ``max_message_size`` is a protocol violation: the
parser enters its error state and refuses further input.  Consumed bytes are
dropped when the buffer is drained, or compacted when the offset passes half
the buffer, so memory stays bounded by ``max_message_size`` plus one read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import ProtocolViolation

__all__ = [
    "AUTHENTICATION",
    "BACKEND_KEY_DATA",
    "BIND_COMPLETE",
    "CLOSE_COMPLETE",
    "COMMAND_COMPLETE",
    "COPY_BOTH",
    "COPY_DATA",
    "COPY_DONE",
    "COPY_IN",
    "COPY_OUT",
    "DATA_ROW",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "EMPTY_QUERY",
    "ERROR",
    "NEGOTIATE_PROTOCOL_VERSION",
    "NOTICE",
    "NOTIFICATION",
    "NO_DATA",
    "PARAMETER_DESCRIPTION",
    "PARAMETER_STATUS",
    "PARSE_COMPLETE",
    "PORTAL_SUSPENDED",
    "PROTOCOL_VERSION",
    "READY",
    "ROW_DESCRIPTION",
    "AuthenticationCleartextPassword",
    "AuthenticationMD5Password",
    "AuthenticationOk",
    "AuthenticationSASL",
    "AuthenticationSASLContinue",
    "AuthenticationSASLFinal",
    "AuthenticationUnsupported",
    "BackendKeyData",
    "BackendMessage",
    "BindComplete",
    "CloseComplete",
    "ColumnDescription",
    "CommandComplete",
    "CopyBothResponse",
    "CopyData",
    "CopyDone",
    "CopyInResponse",
    "CopyOutResponse",
    "DataRow",
    "EmptyQueryResponse",
    "ErrorResponse",
    "MessageParser",
    "NegotiateProtocolVersion",
    "NoData",
    "NoticeResponse",
    "NotificationResponse",
    "ParameterDescription",
    "ParameterStatus",
    "ParseComplete",
    "PortalSuspended",
    "ReadyForQuery",
    "RowDescription",
    "bind",
    "cancel_request",
    "close",
    "copy_data",
    "copy_data_header",
    "copy_done",
    "copy_fail",
    "describe",
    "execute",
    "flush",
    "parse",
    "parse_command_tag",
    "parse_fields",
    "password_message",
    "query",
    "sasl_initial_response",
    "sasl_response",
    "ssl_request",
    "startup_message",
    "sync",
    "terminate",
]

#: Protocol 3.0 (§55.7 StartupMessage: major 3 in the high 16 bits, minor 0).
PROTOCOL_VERSION = 196608
#: §55.7 SSLRequest and CancelRequest magic request codes.
SSL_REQUEST_CODE = 80877103
CANCEL_REQUEST_CODE = 80877102
#: The largest backend message accepted unless configured otherwise.
DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024 * 1024

# Backend message tags (§55.7), as the ints the parser returns: the one table, compared
# on the hot path by the session and the pipeline reader (a module constant is one LOAD_GLOBAL).
AUTHENTICATION = 0x52  # R Authentication*
BACKEND_KEY_DATA = 0x4B  # K BackendKeyData
BIND_COMPLETE = 0x32  # 2 BindComplete
CLOSE_COMPLETE = 0x33  # 3 CloseComplete
COMMAND_COMPLETE = 0x43  # C CommandComplete
COPY_BOTH = 0x57  # W CopyBothResponse
COPY_DATA = 0x64  # d CopyData
COPY_DONE = 0x63  # c CopyDone
COPY_IN = 0x47  # G CopyInResponse
COPY_OUT = 0x48  # H CopyOutResponse
DATA_ROW = 0x44  # D DataRow
EMPTY_QUERY = 0x49  # I EmptyQueryResponse
ERROR = 0x45  # E ErrorResponse
NEGOTIATE_PROTOCOL_VERSION = 0x76  # v NegotiateProtocolVersion
NO_DATA = 0x6E  # n NoData
NOTICE = 0x4E  # N NoticeResponse
NOTIFICATION = 0x41  # A NotificationResponse
PARAMETER_DESCRIPTION = 0x74  # t ParameterDescription
PARAMETER_STATUS = 0x53  # S ParameterStatus
PARSE_COMPLETE = 0x31  # 1 ParseComplete
PORTAL_SUSPENDED = 0x73  # s PortalSuspended
READY = 0x5A  # Z ReadyForQuery
ROW_DESCRIPTION = 0x54  # T RowDescription

_i16 = struct.Struct("!h")
_i32 = struct.Struct("!i")
_u32 = struct.Struct("!I")
_i32x2 = struct.Struct("!ii")
_header = struct.Struct("!ci")  # tag byte + length, every typed frontend message
_msg_header = struct.Struct("!BI")  # tag as int + length, every backend message
_startup_header = struct.Struct("!ii")  # length + protocol version / request code
_cancel = struct.Struct("!iiii")  # §55.7 CancelRequest
_field = struct.Struct("!ihihih")  # §55.7 RowDescription: per field after the name
_execute = struct.Struct("!ci")
_SYNC = b"S\x00\x00\x00\x04"
_FLUSH = b"H\x00\x00\x00\x04"
_TERMINATE = b"X\x00\x00\x00\x04"
_COPY_DONE = b"c\x00\x00\x00\x04"


# ---------------------------------------------------------------------------
# Frontend messages (§55.7)
# ---------------------------------------------------------------------------


def _cstr(text: str) -> bytes:
    data = text.encode()
    if b"\x00" in data:
        raise ValueError(f"protocol string may not contain NUL: {text!r}")
    return data + b"\x00"


def _typed(tag: bytes, body: bytes) -> bytes:
    return _header.pack(tag, len(body) + 4) + body


def startup_message(params: dict[str, str]) -> bytes:
    """Encode StartupMessage: protocol version then ``name\\0value\\0`` pairs.

    Args:
        params: Startup parameters (``user`` is required by the server).

    Returns:
        The encoded message.
    """
    body = b"".join(_cstr(k) + _cstr(v) for k, v in params.items()) + b"\x00"
    return _startup_header.pack(len(body) + 8, PROTOCOL_VERSION) + body


def ssl_request() -> bytes:
    """Encode SSLRequest; the server answers one byte, ``S`` or ``N`` (§55.2.10)."""
    return _startup_header.pack(8, SSL_REQUEST_CODE)


def cancel_request(pid: int, secret: int) -> bytes:
    """Encode CancelRequest, sent on a new connection (§55.2.7).

    Args:
        pid: Backend process id from BackendKeyData.
        secret: Secret key from BackendKeyData.

    Returns:
        The encoded message.
    """
    return _cancel.pack(16, CANCEL_REQUEST_CODE, pid, secret)


def password_message(password: bytes) -> bytes:
    """Encode PasswordMessage (cleartext or MD5 response): ``p`` + C string."""
    return _typed(b"p", password + b"\x00")


def sasl_initial_response(mechanism: str, data: bytes) -> bytes:
    """Encode SASLInitialResponse: mechanism name, then the length-prefixed client-first-message."""
    return _typed(b"p", _cstr(mechanism) + _i32.pack(len(data)) + data)


def sasl_response(data: bytes) -> bytes:
    """Encode SASLResponse: the raw client-final-message."""
    return _typed(b"p", data)


def query(sql: str) -> bytes:
    """Encode Query (simple query protocol, §55.2.2)."""
    return _typed(b"Q", _cstr(sql))


def parse(name: str, sql: str, param_oids: tuple[int, ...] = ()) -> bytes:
    """Encode Parse (§55.2.3).

    Args:
        name: Prepared statement name; ``""`` is the unnamed statement.
        sql: Query text with ``$n`` placeholders.
        param_oids: Parameter type OIDs; 0 or absent lets the server infer.

    Returns:
        The encoded message.
    """
    n = len(param_oids)
    body = _cstr(name) + _cstr(sql) + _i16.pack(n) + struct.pack(f"!{n}I", *param_oids)
    return _typed(b"P", body)


def bind(
    portal: str,
    statement: str,
    param_formats: bytes,
    params: list[bytes | None] | tuple[bytes | None, ...],
    result_formats: bytes,
) -> bytes:
    """Encode Bind.

    Args:
        portal: Portal name (``""`` for the unnamed portal).
        statement: Prepared statement name.
        param_formats: Pre-encoded ``int16 count, int16 code...`` block.
        params: Parameter values already encoded; ``None`` is SQL NULL.
        result_formats: Pre-encoded ``int16 count, int16 code...`` block.

    Returns:
        The encoded message.
    """
    parts = [_cstr(portal), _cstr(statement), param_formats, _i16.pack(len(params))]
    append = parts.append
    pack = _i32.pack
    for value in params:
        if value is None:
            append(b"\xff\xff\xff\xff")
        else:
            append(pack(len(value)))
            append(value)
    append(result_formats)
    body = b"".join(parts)
    return _header.pack(b"B", len(body) + 4) + body


def format_codes(codes: tuple[int, ...] | list[int]) -> bytes:
    """Encode a format-code block as Bind expects it: ``int16 n`` then ``n`` int16 codes.

    Uniform blocks are shortened: all text is ``0`` codes, all binary is one code.
    """
    if not codes or not any(codes):
        return b"\x00\x00"
    if all(codes):
        return b"\x00\x01\x00\x01"
    return struct.pack(f"!h{len(codes)}h", len(codes), *codes)


def describe(kind: bytes, name: str) -> bytes:
    """Encode Describe; ``kind`` is ``b"S"`` (statement) or ``b"P"`` (portal)."""
    return _typed(b"D", kind + _cstr(name))


def execute(portal: str = "", max_rows: int = 0) -> bytes:
    """Encode Execute; ``max_rows`` 0 means no limit."""
    body = _cstr(portal) + _i32.pack(max_rows)
    return _header.pack(b"E", len(body) + 4) + body


def close(kind: bytes, name: str) -> bytes:
    """Encode Close; ``kind`` is ``b"S"`` (statement) or ``b"P"`` (portal)."""
    return _typed(b"C", kind + _cstr(name))


def sync() -> bytes:
    """Encode Sync: ends an extended-query batch; the server answers ReadyForQuery."""
    return _SYNC


def flush() -> bytes:
    """Encode Flush: asks the server to send what it has buffered."""
    return _FLUSH


def terminate() -> bytes:
    """Encode Terminate, the polite goodbye."""
    return _TERMINATE


def copy_data(data: bytes) -> bytes:
    """Encode CopyData (§55.2.6)."""
    return _header.pack(b"d", len(data) + 4) + data


def copy_data_header(size: int) -> bytes:
    """Encode the five bytes that precede ``size`` bytes of CopyData (to frame a buffer without copying it first)."""
    return _header.pack(b"d", size + 4)


def copy_done() -> bytes:
    """Encode CopyDone."""
    return _COPY_DONE


def copy_fail(message: str) -> bytes:
    """Encode CopyFail with the reason the server will report."""
    return _typed(b"f", _cstr(message))


# ---------------------------------------------------------------------------
# Backend messages (§55.7) as events
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class AuthenticationOk:
    """AuthenticationOk: the server accepted the credentials."""


@dataclass(slots=True)
class AuthenticationCleartextPassword:
    """AuthenticationCleartextPassword: send the password as is."""


@dataclass(slots=True)
class AuthenticationMD5Password:
    """AuthenticationMD5Password with its four-byte salt."""

    salt: bytes


@dataclass(slots=True)
class AuthenticationSASL:
    """AuthenticationSASL: the mechanisms the server offers, in its order of preference."""

    mechanisms: list[str]


@dataclass(slots=True)
class AuthenticationSASLContinue:
    """AuthenticationSASLContinue carrying the server-first-message."""

    data: bytes


@dataclass(slots=True)
class AuthenticationSASLFinal:
    """AuthenticationSASLFinal carrying the server-final-message."""

    data: bytes


@dataclass(slots=True)
class AuthenticationUnsupported:
    """An authentication request this driver does not implement (Kerberos, GSSAPI, SSPI)."""

    code: int


@dataclass(slots=True)
class ParameterStatus:
    """ParameterStatus: a run-time parameter's current value."""

    name: str
    value: str


@dataclass(slots=True)
class BackendKeyData:
    """BackendKeyData: what a CancelRequest must quote."""

    pid: int
    secret: int


@dataclass(slots=True)
class ReadyForQuery:
    """ReadyForQuery with the transaction status: ``I`` idle, ``T`` in a block, ``E`` failed block."""

    status: str


@dataclass(slots=True)
class ColumnDescription:
    """One field of a RowDescription."""

    name: str
    table_oid: int
    column: int
    type_oid: int
    type_size: int
    type_modifier: int
    format: int


@dataclass(slots=True)
class RowDescription:
    """RowDescription: the shape of the rows that follow."""

    columns: list[ColumnDescription]


@dataclass(slots=True)
class DataRow:
    """DataRow: raw column values, ``None`` for NULL."""

    values: list[bytes | None]


@dataclass(slots=True)
class CommandComplete:
    """CommandComplete with its tag (``INSERT 0 3``, ``SELECT 2``...)."""

    tag: str


@dataclass(slots=True)
class EmptyQueryResponse:
    """EmptyQueryResponse: the query string was empty."""


@dataclass(slots=True)
class ErrorResponse:
    """ErrorResponse: field code (``C``, ``M``, ``S``...) to value, §55.8."""

    fields: dict[str, str]


@dataclass(slots=True)
class NoticeResponse:
    """NoticeResponse: same fields as ErrorResponse, not an error."""

    fields: dict[str, str]


@dataclass(slots=True)
class ParseComplete:
    """ParseComplete."""


@dataclass(slots=True)
class BindComplete:
    """BindComplete."""


@dataclass(slots=True)
class CloseComplete:
    """CloseComplete."""


@dataclass(slots=True)
class NoData:
    """NoData: the statement returns no rows."""


@dataclass(slots=True)
class ParameterDescription:
    """ParameterDescription: the type OID of each ``$n``."""

    type_oids: tuple[int, ...]


@dataclass(slots=True)
class PortalSuspended:
    """PortalSuspended: Execute's row limit was reached."""


@dataclass(slots=True)
class CopyInResponse:
    """CopyInResponse: the server awaits CopyData (format 0 text, 1 binary)."""

    format: int
    column_formats: tuple[int, ...]


@dataclass(slots=True)
class CopyOutResponse:
    """CopyOutResponse: CopyData follows."""

    format: int
    column_formats: tuple[int, ...]


@dataclass(slots=True)
class CopyBothResponse:
    """CopyBothResponse (replication)."""

    format: int
    column_formats: tuple[int, ...]


@dataclass(slots=True)
class CopyData:
    """CopyData from the server."""

    data: bytes


@dataclass(slots=True)
class CopyDone:
    """CopyDone from the server."""


@dataclass(slots=True)
class NotificationResponse:
    """NotificationResponse: a NOTIFY on a channel this session listens to."""

    pid: int
    channel: str
    payload: str


@dataclass(slots=True)
class NegotiateProtocolVersion:
    """NegotiateProtocolVersion: newest minor version supported and options not recognised."""

    newest_minor: int
    unrecognized: list[str]


BackendMessage = (
    AuthenticationOk
    | AuthenticationCleartextPassword
    | AuthenticationMD5Password
    | AuthenticationSASL
    | AuthenticationSASLContinue
    | AuthenticationSASLFinal
    | AuthenticationUnsupported
    | ParameterStatus
    | BackendKeyData
    | ReadyForQuery
    | RowDescription
    | DataRow
    | CommandComplete
    | EmptyQueryResponse
    | ErrorResponse
    | NoticeResponse
    | ParseComplete
    | BindComplete
    | CloseComplete
    | NoData
    | ParameterDescription
    | PortalSuspended
    | CopyInResponse
    | CopyOutResponse
    | CopyBothResponse
    | CopyData
    | CopyDone
    | NotificationResponse
    | NegotiateProtocolVersion
)


def parse_fields(body: bytes) -> dict[str, str]:
    """Decode the fields of an ErrorResponse or NoticeResponse body (§55.8).

    Args:
        body: Message body: ``(code byte, C string)*`` then a NUL.

    Returns:
        Field code to value.
    """
    fields: dict[str, str] = {}
    for part in body.split(b"\x00"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


def parse_command_tag(tag: str) -> int:
    """Return the row count a CommandComplete tag carries, or -1 when it carries none.

    ``INSERT oid rows``, ``UPDATE rows``, ``SELECT rows``, ``COPY rows``... end in
    the count; ``CREATE TABLE`` does not.
    """
    _, _, last = tag.rpartition(" ")
    return int(last) if last.isdigit() else -1


def parse_row_description(body: bytes) -> RowDescription:
    """Decode a RowDescription body."""
    count = _i16.unpack_from(body, 0)[0]
    pos = 2
    columns = []
    unpack = _field.unpack_from
    for _ in range(count):
        end = body.index(b"\x00", pos)
        name = body[pos:end].decode()
        table, attnum, oid, size, mod, fmt = unpack(body, end + 1)
        columns.append(ColumnDescription(name, table, attnum, oid & 0xFFFFFFFF, size, mod, fmt))
        pos = end + 19
    return RowDescription(columns)


def parse_data_row(body: bytes) -> list[bytes | None]:
    """Decode a DataRow body into raw column values (``None`` for NULL)."""
    count = _i16.unpack_from(body, 0)[0]
    pos = 2
    values: list[bytes | None] = []
    unpack = _i32.unpack_from
    for _ in range(count):
        size = unpack(body, pos)[0]
        pos += 4
        if size < 0:
            values.append(None)
        else:
            values.append(body[pos : pos + size])
            pos += size
    return values


def _copy_response(body: bytes) -> tuple[int, tuple[int, ...]]:
    count = _i16.unpack_from(body, 1)[0]
    return body[0], struct.unpack_from(f"!{count}h", body, 3)


def _authentication(body: bytes) -> BackendMessage:
    code = _i32.unpack_from(body, 0)[0]
    if code == 0:
        return AuthenticationOk()
    if code == 3:
        return AuthenticationCleartextPassword()
    if code == 5:
        return AuthenticationMD5Password(bytes(body[4:8]))
    if code == 10:
        return AuthenticationSASL([m.decode() for m in body[4:].split(b"\x00") if m])
    if code == 11:
        return AuthenticationSASLContinue(bytes(body[4:]))
    if code == 12:
        return AuthenticationSASLFinal(bytes(body[4:]))
    return AuthenticationUnsupported(code)


def decode_message(tag: int, body: bytes) -> BackendMessage:
    """Turn one raw backend message into its event object.

    Args:
        tag: The message type byte as an int (``ord("Z")``...).
        body: The message body without tag and length.

    Returns:
        The event.

    Raises:
        ProtocolViolation: The tag is not a backend message this driver knows.
    """
    if tag == DATA_ROW:
        return DataRow(parse_data_row(body))
    if tag == READY:
        return ReadyForQuery(chr(body[0]))
    if tag == COMMAND_COMPLETE:
        return CommandComplete(body[:-1].decode())
    if tag == ROW_DESCRIPTION:
        return parse_row_description(body)
    if tag == AUTHENTICATION:
        return _authentication(body)
    if tag == PARAMETER_STATUS:
        name, value, _ = body.split(b"\x00", 2)
        return ParameterStatus(name.decode(), value.decode())
    if tag == BACKEND_KEY_DATA:
        pid, secret = _i32x2.unpack_from(body, 0)
        return BackendKeyData(pid, secret)
    if tag == ERROR:
        return ErrorResponse(parse_fields(body))
    if tag == NOTICE:
        return NoticeResponse(parse_fields(body))
    if tag == PARSE_COMPLETE:
        return ParseComplete()
    if tag == BIND_COMPLETE:
        return BindComplete()
    if tag == CLOSE_COMPLETE:
        return CloseComplete()
    if tag == NO_DATA:
        return NoData()
    if tag == EMPTY_QUERY:
        return EmptyQueryResponse()
    if tag == PARAMETER_DESCRIPTION:
        count = _i16.unpack_from(body, 0)[0]
        return ParameterDescription(struct.unpack_from(f"!{count}I", body, 2))
    if tag == PORTAL_SUSPENDED:
        return PortalSuspended()
    if tag == COPY_IN:
        return CopyInResponse(*_copy_response(body))
    if tag == COPY_OUT:
        return CopyOutResponse(*_copy_response(body))
    if tag == COPY_BOTH:
        return CopyBothResponse(*_copy_response(body))
    if tag == COPY_DATA:
        return CopyData(bytes(body))
    if tag == COPY_DONE:
        return CopyDone()
    if tag == NOTIFICATION:
        pid = _i32.unpack_from(body, 0)[0]
        channel, payload, _ = body[4:].split(b"\x00", 2)
        return NotificationResponse(pid, channel.decode(), payload.decode())
    if tag == NEGOTIATE_PROTOCOL_VERSION:
        minor, count = _i32x2.unpack_from(body, 0)
        names = [n.decode() for n in body[8:].split(b"\x00")[:count]]
        return NegotiateProtocolVersion(minor, names)
    raise ProtocolViolation(f"unknown backend message type {chr(tag)!r} ({len(body)} bytes)")


class MessageParser:
    """Splits the server's byte stream into messages.

    Feed it whatever the socket returned; take complete messages out with
    :meth:`next_raw` (hot path: ``(tag, body)``) or :meth:`next_event`.

    Args:
        max_message_size: The largest message accepted, body included.
    """

    __slots__ = ("_buf", "_error", "_pos", "max_message_size")

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._error: ProtocolViolation | None = None
        self.max_message_size = max_message_size

    @property
    def buffered(self) -> int:
        """Bytes received but not consumed yet."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        """Append bytes received from the server.

        Raises:
            ProtocolViolation: The parser already failed.
        """
        if self._error is not None:
            raise self._error
        buf = self._buf
        if self._pos:
            # Drop consumed bytes before growing: cheap when drained (the usual
            # case, one whole response per read), a compaction otherwise.
            if self._pos == len(buf):
                buf.clear()
                self._pos = 0
            elif self._pos > len(buf) // 2:
                del buf[: self._pos]
                self._pos = 0
        buf += data

    def next_raw(self) -> tuple[int, bytes] | None:
        """Return the next complete message as ``(tag, body)``, or ``None`` if more bytes are needed.

        Raises:
            ProtocolViolation: The length field is impossible or over the limit.
        """
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < 5:
            return None
        tag, length = _msg_header.unpack_from(buf, pos)
        if length < 4 or length >= self.max_message_size:
            self._error = ProtocolViolation(
                f"backend message {chr(tag)!r}: length {length} outside 4..{self.max_message_size}"
            )
            raise self._error
        end = pos + 1 + length
        if end > len(buf):
            return None
        self._pos = end
        return tag, bytes(buf[pos + 5 : end])

    def take_all(self) -> tuple[bytes, int]:
        """Hand every unconsumed byte to a loop that walks the messages in place: ``(data, start)``.

        The per-row loops (:meth:`Session.read_execute <chopin_pg._session.Session.read_execute>`)
        use it instead of :meth:`next_raw`: one copy per read instead of a call and a body
        copy per message.  The parser is empty afterwards; the loop returns what it did not
        consume with :meth:`give_back` before anything is fed again.

        Raises:
            ProtocolViolation: The parser already failed.
        """
        if self._error is not None:
            raise self._error
        data, start = bytes(self._buf), self._pos
        self._buf.clear()
        self._pos = 0
        return data, start

    def give_back(self, data: bytes, pos: int) -> None:
        """Put back ``data[pos:]``, the bytes a :meth:`take_all` loop did not consume."""
        self._buf += memoryview(data)[pos:]

    def refuse_length(self, tag: int, length: int) -> ProtocolViolation:
        """Fail the parser for a message whose length field is impossible; return the error to raise."""
        self._error = ProtocolViolation(
            f"backend message {chr(tag)!r}: length {length} outside 4..{self.max_message_size}"
        )
        return self._error

    def next_event(self) -> BackendMessage | None:
        """Return the next complete message as an event object, or ``None`` if more bytes are needed."""
        raw = self.next_raw()
        if raw is None:
            return None
        return decode_message(raw[0], raw[1])

    def take_byte(self) -> int | None:
        """Consume one raw byte (the SSLRequest answer), or return ``None`` if none is buffered."""
        if self._pos >= len(self._buf):
            return None
        value = self._buf[self._pos]
        self._pos += 1
        return value
