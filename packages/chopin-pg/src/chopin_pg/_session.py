"""The sans-IO session: protocol state plus one generator per operation.

How it works (the psycopg 3 ``generators.py`` pattern, without libpq): each
operation is a generator that *yields what it waits for*.  It yields ``bytes``
when it wants them sent (the shell sends them and resumes it with ``None``) and
``None`` when it needs input (the shell resumes it with the bytes it read; EOF
is the shell's to report).  The generator's return value is the operation's
result; server errors are raised from it only after ReadyForQuery, so the
connection is always left ready for the next command.  ``_waiting.run`` is the
blocking shell; an asyncio shell could drive the same generators.
"""

from __future__ import annotations

import struct
from collections import OrderedDict, deque
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any

from . import protocol as p
from ._codecs import encode_text
from ._row_decoder import RowDecoder, row_decoder
from .auth import SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramClient, md5_password, tls_server_end_point
from .config import PgConfig
from .errors import (
    AuthenticationFailed,
    FeatureNotSupported,
    InterfaceError,
    InvalidStatementName,
    PgError,
    ProtocolViolation,
    ServerError,
    error_from_fields,
)
from .row import Row
from .types import Decoder, ParamEncoder, TypeRegistry, encode_params

__all__ = ["Notification", "PreparedStatement", "Result", "Session", "is_stale_plan"]

#: What an operation generator yields (bytes to send, or None: "give me input") and is sent back.
Gen = Generator[bytes | None, bytes | None, Any]

_i32 = struct.Struct("!i")
_unpack_i32 = _i32.unpack_from
_pack_i32 = _i32.pack
_pack_i16 = struct.Struct("!h").pack
_unpack_header = struct.Struct("!BI").unpack_from  # backend message: tag, length (§55.7)
_typed_header = struct.Struct("!ci").pack  # frontend message: tag, length (§55.7)
_NULL = b"\xff\xff\xff\xff"  # Bind: a NULL parameter's length
_TEXT_CODE = b"\x00\x00"
_BINARY_CODE = b"\x00\x01"
_ALL_TEXT = b"\x00\x00"  # Bind format block: no codes, every parameter in text
_ALL_BINARY = b"\x00\x01\x00\x01"  # one code, applied to every parameter
_READY_HEAD = b"Z\x00\x00\x00\x05"  # ReadyForQuery before its status byte
_EXECUTE_UNNAMED = p.execute()
_EXECUTE_SYNC = p.execute() + p.sync()

# Backend message tags as ints (§55.7), compared on the hot path.
_DATA_ROW = 0x44
_COMMAND_COMPLETE = 0x43
_READY = 0x5A
_ERROR = 0x45
_NOTICE = 0x4E
_NOTIFICATION = 0x41
_PARAMETER_STATUS = 0x53
_BIND_COMPLETE = 0x32
_PARSE_COMPLETE = 0x31
_CLOSE_COMPLETE = 0x33
_ROW_DESCRIPTION = 0x54
_PARAMETER_DESCRIPTION = 0x74
_NO_DATA = 0x6E
_EMPTY_QUERY = 0x49
_PORTAL_SUSPENDED = 0x73
_COPY_IN = 0x47
_COPY_OUT = 0x48
_COPY_DATA = 0x64
_COPY_DONE = 0x63


def is_stale_plan(exc: PgError) -> bool:
    """Whether ``exc`` means a cached statement must be prepared again.

    0A000 "cached plan must not change result type" comes after DDL; 26000 after ``DISCARD ALL``.
    """
    if isinstance(exc, InvalidStatementName):
        return True
    return isinstance(exc, FeatureNotSupported) and "cached plan" in exc.message


class Notification:
    """A NOTIFY received on a channel this session listens to.

    Attributes:
        pid: Backend process that sent it.
        channel: Channel name.
        payload: Payload string (may be empty).
    """

    __slots__ = ("channel", "payload", "pid")

    def __init__(self, pid: int, channel: str, payload: str) -> None:
        self.pid = pid
        self.channel = channel
        self.payload = payload

    def __repr__(self) -> str:
        return f"Notification(pid={self.pid}, channel={self.channel!r}, payload={self.payload!r})"


class PreparedStatement:
    """A statement parsed on the server, with everything Bind and DataRow decoding need.

    Attributes:
        name: Server-side name (``""`` for the unnamed statement).
        sql: Query text.
        param_oids: Type OIDs the server inferred for ``$1..$n``.
        columns: Result columns (empty if the statement returns no rows).
        names: Column name to index, shared by every :class:`Row`.
        decoders: One decoder per column, chosen once.
        result_formats: Pre-encoded format-code block for Bind.
        param_encoders: One encoder per parameter, chosen once.
    """

    __slots__ = (
        "bind_prefix",
        "columns",
        "decode_row",
        "decoders",
        "name",
        "names",
        "param_encoders",
        "param_oids",
        "result_formats",
        "sql",
    )

    def __init__(
        self, name: str, sql: str, param_oids: tuple[int, ...], columns: list[p.ColumnDescription], types: TypeRegistry
    ) -> None:
        self.name = name
        self.sql = sql
        self.param_oids = param_oids
        self.columns = columns
        self.names: dict[str, int] = {}
        for i, col in enumerate(columns):
            self.names.setdefault(col.name, i)
        codecs = [types.column_codec(col.type_oid) for col in columns]
        self.decoders: list[Decoder] = [dec for _, dec in codecs]
        self.result_formats = p.format_codes([fmt for fmt, _ in codecs])
        self.decode_row: RowDecoder = row_decoder(self.decoders, self.names)
        self.param_encoders: list[ParamEncoder] = [types.param_encoder(oid) for oid in param_oids]
        # Bind's unnamed portal and this statement's name, encoded once (§55.7 Bind).
        self.bind_prefix = b"\x00" + name.encode() + b"\x00"


class Result:
    """What one statement returned.

    Attributes:
        rows: The rows (empty for statements without a result set).
        tag: The CommandComplete tag (``""`` for an empty query).
        rowcount: The count the tag carries, or -1.
        columns: Column descriptions (empty when there was no RowDescription).
    """

    __slots__ = ("columns", "rowcount", "rows", "tag")

    def __init__(self, rows: list[Row], tag: str, columns: list[p.ColumnDescription]) -> None:
        self.rows = rows
        self.tag = tag
        self.rowcount = p.parse_command_tag(tag)
        self.columns = columns


class Session:
    """Protocol state of one connection, and the operations on it as generators.

    Args:
        config: Connection settings.
        types: The connection's own type registry.
    """

    def __init__(self, config: PgConfig, types: TypeRegistry) -> None:
        self.config = config
        self.types = types
        self.parser = p.MessageParser(config.max_message_size)
        self.parameters: dict[str, str] = {}
        self.backend_pid = 0
        self.backend_secret = 0
        self.status = "I"
        self.auth_method = "trust"
        self.fatal: ServerError | None = None
        self.notice_handler: Callable[[dict[str, str]], None] | None = None
        self.notices: deque[dict[str, str]] = deque(maxlen=100)
        self.notifications: deque[Notification] = deque(maxlen=100_000)
        self.statements: OrderedDict[str, PreparedStatement] = OrderedDict()
        self.statement_cache_capacity = config.statement_cache_capacity
        self._statement_counter = 0
        self._pending_close: list[str] = []

    # -- asynchronous messages (§55.2.8), accepted at any point ------------------

    def handle_async(self, tag: int, body: bytes) -> None:
        """Handle NoticeResponse, NotificationResponse and ParameterStatus; refuse anything else.

        Raises:
            ProtocolViolation: The message is not one the server may send unprompted.
        """
        if tag == _NOTICE:
            fields = p.parse_fields(body)
            self.notices.append(fields)
            if self.notice_handler is not None:
                self.notice_handler(fields)
        elif tag == _NOTIFICATION:
            msg = p.decode_message(tag, body)
            assert isinstance(msg, p.NotificationResponse)
            self.notifications.append(Notification(msg.pid, msg.channel, msg.payload))
        elif tag == _PARAMETER_STATUS:
            name, value, _ = body.split(b"\x00", 2)
            self._set_parameter(name.decode(), value.decode())
        elif tag == _ERROR:
            # An unprompted error is FATAL (admin shutdown, idle timeout): the server closes next.
            self.fatal = error_from_fields(p.parse_fields(body))
        else:
            raise ProtocolViolation(f"unexpected backend message {chr(tag)!r} ({len(body)} bytes)")

    def _set_parameter(self, name: str, value: str) -> None:
        self.parameters[name] = value
        if name == "TimeZone":
            self.types.set_timezone(value)

    def _error(self, body: bytes) -> ServerError:
        err = error_from_fields(p.parse_fields(body))
        if err.severity in ("FATAL", "PANIC"):
            self.fatal = err
        return err

    def _next_message(self) -> Gen:
        """The next backend message as ``(tag, body)``, reading more bytes until one is complete.

        For the once-per-operation exchanges (startup, prepare, COPY set-up); the
        per-row loops (queries, COPY TO data) inline the same three lines instead of
        paying a generator frame per message.
        """
        parser = self.parser
        while (raw := parser.next_raw()) is None:
            parser.feed((yield None) or b"")
        return raw

    # -- startup and authentication (§55.2.1) ------------------------------------

    def startup(self, tls_certificate: bytes | None) -> Gen:
        """Send StartupMessage, authenticate, and read until the first ReadyForQuery.

        Args:
            tls_certificate: The server certificate (DER) when on TLS, for channel binding.
        """
        config = self.config
        yield p.startup_message(config.startup_params())
        scram: ScramClient | None = None
        while True:
            tag, body = yield from self._next_message()
            if tag == 0x52:  # Authentication*
                msg = p.decode_message(tag, body)
                if isinstance(msg, p.AuthenticationOk):
                    continue
                if isinstance(msg, p.AuthenticationSASLFinal):
                    if scram is None:
                        raise AuthenticationFailed("SCRAM: server-final-message without an exchange")
                    scram.verify_server_final(msg.data)
                    continue
                password = config.password
                if password is None:
                    raise AuthenticationFailed(
                        f"server asked for a password ({type(msg).__name__}) for user {config.user!r}; none given"
                    )
                if isinstance(msg, p.AuthenticationCleartextPassword):
                    self.auth_method = "cleartext"
                    yield p.password_message(password.encode())
                elif isinstance(msg, p.AuthenticationMD5Password):
                    self.auth_method = "md5"
                    yield p.password_message(md5_password(config.user, password, msg.salt))
                elif isinstance(msg, p.AuthenticationSASL):
                    if tls_certificate is not None and SCRAM_SHA_256_PLUS in msg.mechanisms:
                        scram = ScramClient(password, channel_binding=tls_server_end_point(tls_certificate))
                    elif SCRAM_SHA_256 in msg.mechanisms:
                        scram = ScramClient(password, client_supports_binding=tls_certificate is not None)
                    else:
                        raise AuthenticationFailed(f"SASL: no supported mechanism in {msg.mechanisms}")
                    self.auth_method = scram.mechanism
                    yield p.sasl_initial_response(scram.mechanism, scram.client_first())
                elif isinstance(msg, p.AuthenticationSASLContinue):
                    if scram is None:
                        raise AuthenticationFailed("SCRAM: server-first-message without an exchange")
                    yield p.sasl_response(scram.client_final(msg.data))
                else:
                    raise AuthenticationFailed(f"unsupported authentication request {msg}")
            elif tag == 0x4B:  # BackendKeyData
                self.backend_pid, self.backend_secret = struct.unpack_from("!ii", body, 0)
            elif tag == _READY:
                self.status = chr(body[0])
                return None
            elif tag == _ERROR:
                raise self._error(body)
            elif tag == 0x76:  # NegotiateProtocolVersion: we ask for nothing optional
                continue
            else:
                self.handle_async(tag, body)

    # -- simple query (§55.2.2) ---------------------------------------------------

    def simple_query(self, sql: str) -> Gen:
        """Run one or more statements with the simple query protocol; values are decoded from text.

        Returns:
            One :class:`Result` per statement.
        """
        yield p.query(sql)
        results: list[Result] = []
        rows: list[Row] = []
        columns: list[p.ColumnDescription] = []
        decode_row = row_decoder([], {})
        error: ServerError | None = None
        failure: Exception | None = None
        parser = self.parser
        while True:
            raw = parser.next_raw()
            if raw is None:
                parser.feed((yield None) or b"")
                continue
            tag, body = raw
            if tag == _DATA_ROW:
                try:
                    rows.append(decode_row(body, 2))
                except Exception as exc:  # keep reading to ReadyForQuery, then raise
                    failure = failure or exc
            elif tag == _ROW_DESCRIPTION:
                columns = p.parse_row_description(body).columns
                names: dict[str, int] = {}
                for i, col in enumerate(columns):
                    names.setdefault(col.name, i)
                decode_row = row_decoder([self.types.text_decoder(col.type_oid) for col in columns], names)
            elif tag in (_COMMAND_COMPLETE, _EMPTY_QUERY):
                results.append(Result(rows, body[:-1].decode() if tag == _COMMAND_COMPLETE else "", columns))
                rows, columns = [], []
            elif tag == _READY:
                self.status = chr(body[0])
                break
            elif tag == _ERROR:
                error = self._error(body)
            elif tag == _COPY_IN:
                yield p.copy_fail("COPY FROM STDIN is not supported by query_simple; use copy_from")
            elif tag in (_COPY_OUT, _COPY_DATA, _COPY_DONE):
                continue  # COPY TO STDOUT through query_simple: data discarded
            else:
                self.handle_async(tag, body)
        if error is not None:
            raise error
        if failure is not None:
            raise failure
        return results

    # -- extended query (§55.2.3) -------------------------------------------------

    def take_pending_close(self) -> bytes:
        """Return Close messages for statements evicted since the last command (sent before the next one)."""
        if not self._pending_close:
            return b""
        out = b"".join(p.close(b"S", name) for name in self._pending_close)
        self._pending_close.clear()
        return out

    def lookup(self, sql: str) -> PreparedStatement | None:
        """Return the cached statement for ``sql`` and mark it recently used."""
        stmt = self.statements.get(sql)
        if stmt is not None:
            self.statements.move_to_end(sql)
        return stmt

    def evict(self, sql: str) -> None:
        """Forget the cached statement for ``sql``; it is closed on the server with the next command."""
        stmt = self.statements.pop(sql, None)
        if stmt is not None and stmt.name:
            self._pending_close.append(stmt.name)

    def clear_statements(self) -> None:
        """Forget every cached statement; they are closed on the server with the next command."""
        self._pending_close.extend(stmt.name for stmt in self.statements.values() if stmt.name)
        self.statements.clear()

    def forget_session_state(self) -> None:
        """Forget what DISCARD ALL dropped: every prepared statement, queued notifications and notices.

        Nothing is sent: the statements no longer exist on the server, so no Close is queued for them.
        """
        self.statements.clear()
        self._pending_close.clear()
        self.forget_received()

    def forget_received(self) -> None:
        """Drop the notifications and notices received so far (they belong to the session's previous user)."""
        self.notifications.clear()
        self.notices.clear()

    def set_capacity(self, capacity: int) -> None:
        """Change the statement cache capacity, evicting the least recently used statements."""
        if capacity < 0:
            raise InterfaceError(f"statement cache capacity: expected >= 0, got {capacity}")
        self.statement_cache_capacity = capacity
        while len(self.statements) > capacity:
            sql = next(iter(self.statements))
            self.evict(sql)

    def reserve_statement_name(self) -> str:
        """Return a fresh statement name, or ``""`` (the unnamed statement) when the cache is disabled."""
        if self.statement_cache_capacity <= 0:
            return ""
        self._statement_counter += 1
        return f"_cpg{self._statement_counter}"

    def remember(self, stmt: PreparedStatement) -> None:
        """Put a named statement in the cache, evicting the least recently used ones beyond capacity."""
        if not stmt.name or self.statement_cache_capacity <= 0:
            return
        old = self.statements.pop(stmt.sql, None)
        if old is not None and old.name != stmt.name:
            self._pending_close.append(old.name)
        while len(self.statements) >= self.statement_cache_capacity:
            self.evict(next(iter(self.statements)))
        self.statements[stmt.sql] = stmt

    def prepare(self, sql: str, cache: bool = True) -> Gen:
        """Parse and describe ``sql``: Parse + Describe(S) + Sync, one round trip.

        Args:
            sql: Query text.
            cache: Whether to name the statement and keep it in the LRU cache.

        Returns:
            The :class:`PreparedStatement`.
        """
        name = ""
        if cache and self.statement_cache_capacity > 0:
            self._statement_counter += 1
            name = f"_cpg{self._statement_counter}"
            while len(self.statements) >= self.statement_cache_capacity:
                self.evict(next(iter(self.statements)))
        yield self.take_pending_close() + p.parse(name, sql) + p.describe(b"S", name) + p.sync()
        param_oids: tuple[int, ...] = ()
        columns: list[p.ColumnDescription] = []
        error: ServerError | None = None
        while True:
            tag, body = yield from self._next_message()
            if tag == _PARAMETER_DESCRIPTION:
                count = struct.unpack_from("!h", body, 0)[0]
                param_oids = struct.unpack_from(f"!{count}I", body, 2)
            elif tag == _ROW_DESCRIPTION:
                columns = p.parse_row_description(body).columns
            elif tag in (_PARSE_COMPLETE, _NO_DATA, _CLOSE_COMPLETE):
                continue
            elif tag == _READY:
                self.status = chr(body[0])
                break
            elif tag == _ERROR:
                error = self._error(body)
            else:
                self.handle_async(tag, body)
        if error is not None:
            raise error
        stmt = PreparedStatement(name, sql, param_oids, columns, self.types)
        if name:
            self.statements[sql] = stmt
        return stmt

    def execute(self, stmt: PreparedStatement, param_sets: Iterable[Sequence[Any]]) -> Gen:
        """Bind and execute a prepared statement once per parameter set, in one batch ending in Sync.

        Returns:
            One :class:`Result` per parameter set (fewer if one failed).
        """
        parts = [self.take_pending_close()]
        execute = _EXECUTE_UNNAMED
        bind = self.bind_message
        for params in param_sets:
            parts.append(bind(stmt, params))
            parts.append(execute)
        parts.append(p.sync())
        # One write for the whole batch: Bind+Execute(+...)+Sync.
        yield b"".join(parts)
        return (yield from self.read_execute(stmt))

    def bind_one(self, stmt: PreparedStatement, params: Sequence[Any]) -> bytes:
        """Encode Bind + Execute + Sync for one parameter set: the bytes :meth:`execute` sends for one set.

        Raises:
            DataError: The number of values does not match the statement.
        """
        return self.take_pending_close() + self.bind_message(stmt, params) + _EXECUTE_SYNC

    def bind_message(self, stmt: PreparedStatement, params: Sequence[Any]) -> bytes:
        """Encode Bind (unnamed portal) for a prepared statement and one parameter set.

        Built in one pass, without the intermediate lists of :func:`encode_params`
        and :func:`protocol.bind`; the bytes are theirs.

        Raises:
            DataError: The number of values does not match the statement.
        """
        encoders = stmt.param_encoders
        count = len(encoders)
        if len(params) != count:
            encode_params(encoders, params)  # raises the count mismatch
        values: list[bytes] = [_pack_i16(count)]
        append = values.append
        codes: list[bytes] = []  # one format code per parameter (§55.7 Bind)
        code = codes.append
        binary = 0
        for enc, value in zip(encoders, params, strict=True):
            if value is None:
                code(_TEXT_CODE)
                append(_NULL)
                continue
            accepts = enc.accepts
            encoded = False
            if accepts is None or type(value) in accepts:
                try:
                    data = enc.encode(value)
                    encoded = True
                except (struct.error, OverflowError, AttributeError, TypeError):
                    pass  # out of range or wrong shape: let the server judge the text form
            if encoded:
                if enc.format:
                    binary += 1
                    code(_BINARY_CODE)
                else:
                    code(_TEXT_CODE)
            else:
                data = encode_text(value)
                code(_TEXT_CODE)
            append(_pack_i32(len(data)))
            append(data)
        # The format block as protocol.format_codes shortens it: all text "0 codes", all binary one code.
        if binary == 0:
            formats = _ALL_TEXT
        elif binary == count:
            formats = _ALL_BINARY
        else:
            formats = _pack_i16(count) + b"".join(codes)
        body = b"".join((stmt.bind_prefix, formats, *values, stmt.result_formats))
        return _typed_header(b"B", len(body) + 4) + body

    def take_reply(self, data: bytes, stmt: PreparedStatement) -> Result | None:
        """Decode the whole answer to :meth:`bind_one` when ``data`` holds exactly that, else return ``None``.

        The one-query fast path: one read usually brings the whole answer
        (BindComplete, DataRows, CommandComplete, ReadyForQuery), and walking it
        in place skips the parser's buffer copies.  Anything else (an error, a
        notice, a partial read, a value that does not decode) returns ``None``
        with no state changed: the caller then feeds ``data`` to the parser and
        reads on with :meth:`read_execute`, which handles every case.
        """
        limit = len(data) - 6
        # ReadyForQuery (§55.7: 'Z', length 5, status) must be the last message.
        if limit < 0 or data[limit : limit + 5] != _READY_HEAD:
            return None
        rows: list[Row] = []
        append = rows.append
        decode_row = stmt.decode_row
        tag: str | None = None
        max_size = self.parser.max_message_size
        unpack = _unpack_header
        pos = 0
        while pos < limit:
            kind, length = unpack(data, pos)
            end = pos + 1 + length
            if length < 4 or length >= max_size or end > limit:
                return None
            if kind == _DATA_ROW:
                try:
                    append(decode_row(data, pos + 7))
                except Exception:  # the general path reports it, after ReadyForQuery
                    return None
            elif kind == _COMMAND_COMPLETE:
                if tag is not None:
                    return None
                try:
                    tag = data[pos + 5 : end - 1].decode()
                except UnicodeDecodeError:
                    return None
            elif kind not in (_BIND_COMPLETE, _CLOSE_COMPLETE):
                return None
            pos = end
        if tag is None:
            return None
        self.status = chr(data[limit + 5])
        return Result(rows, tag, stmt.columns)

    def read_execute(self, stmt: PreparedStatement) -> Gen:
        """Read the answers to :meth:`execute`'s batch (or :meth:`bind_one`'s) up to ReadyForQuery.

        Returns:
            One :class:`Result` per Execute answered.
        """
        decode_row = stmt.decode_row
        columns = stmt.columns
        results: list[Result] = []
        rows: list[Row] = []
        append = rows.append
        error: ServerError | None = None
        failure: Exception | None = None
        parser = self.parser
        next_raw = parser.next_raw
        while True:
            raw = next_raw()
            if raw is None:
                parser.feed((yield None) or b"")
                continue
            tag, body = raw
            if tag == _DATA_ROW:
                try:
                    append(decode_row(body, 2))
                except Exception as exc:  # keep reading to ReadyForQuery, then raise
                    failure = failure or exc
            elif tag == _COMMAND_COMPLETE:
                results.append(Result(rows, body[:-1].decode(), columns))
                rows = []
                append = rows.append
            elif tag in (_BIND_COMPLETE, _CLOSE_COMPLETE):
                continue
            elif tag == _READY:
                self.status = chr(body[0])
                break
            elif tag == _ERROR:
                error = self._error(body)
            elif tag == _EMPTY_QUERY:
                results.append(Result([], "", columns))
            elif tag == _PORTAL_SUSPENDED:
                results.append(Result(rows, "", columns))
                rows = []
                append = rows.append
            else:
                self.handle_async(tag, body)
        if error is not None:
            raise error
        if failure is not None:
            raise failure
        return results

    # -- COPY (§55.2.6) -----------------------------------------------------------

    def copy_in_start(self, sql: str) -> Gen:
        """Send ``COPY ... FROM STDIN`` and read up to CopyInResponse.

        Returns:
            The overall format the server expects (0 text or csv, 1 binary).

        Raises:
            ServerError: The statement failed (after ReadyForQuery).
            InterfaceError: The statement ran, but was not a COPY FROM STDIN.
        """
        yield p.query(sql)
        error: ServerError | None = None
        while True:
            tag, body = yield from self._next_message()
            if tag == _COPY_IN:
                return body[0]
            if tag == _READY:
                self.status = chr(body[0])
                if error is not None:
                    raise error
                raise InterfaceError(f"copy_in: statement did not run a COPY FROM STDIN: {sql[:200]!r}")
            if tag == _ERROR:
                error = self._error(body)
            elif tag in (_COPY_OUT, _COPY_DATA, _COPY_DONE, _ROW_DESCRIPTION, _DATA_ROW, _EMPTY_QUERY):
                continue  # not a COPY FROM STDIN: reported at ReadyForQuery
            elif tag != _COMMAND_COMPLETE:
                self.handle_async(tag, body)

    def send(self, data: bytes) -> Gen:
        """Send ``data`` and read nothing (CopyData during COPY FROM STDIN: the server does not answer it)."""
        yield data

    def send_then(self, data: bytes, then: Gen, received: bytes = b"") -> Gen:
        """Send ``data`` (if any) and feed ``received`` (bytes already read), then run ``then`` (a reader).

        The fast paths use it to hand what they sent or read to the general path.
        """
        if data:
            yield data
        if received:
            self.parser.feed(received)
        return (yield from then)

    def copy_in_end(self, message: bytes) -> Gen:
        """Send the end of a COPY FROM STDIN (last CopyData + CopyDone, or CopyFail) and read to ReadyForQuery.

        Returns:
            The :class:`Result` of the COPY.

        Raises:
            ServerError: The COPY failed (57014 after CopyFail), after ReadyForQuery.
        """
        yield message
        result = Result([], "", [])
        error: ServerError | None = None
        while True:
            tag, body = yield from self._next_message()
            if tag == _COMMAND_COMPLETE:
                result = Result([], body[:-1].decode(), [])
            elif tag == _READY:
                self.status = chr(body[0])
                break
            elif tag == _ERROR:
                error = self._error(body)
            else:
                self.handle_async(tag, body)
        if error is not None:
            raise error
        return result

    def copy_out_start(self, sql: str) -> Gen:
        """Send ``COPY ... TO STDOUT`` and read up to CopyOutResponse.

        Returns:
            The overall format (0 text or csv, 1 binary).

        Raises:
            ServerError: The statement failed (after ReadyForQuery).
            InterfaceError: The statement ran, but was not a COPY TO STDOUT.
        """
        yield p.query(sql)
        error: ServerError | None = None
        refused = False
        while True:
            tag, body = yield from self._next_message()
            if tag == _COPY_OUT:
                return body[0]
            if tag == _READY:
                self.status = chr(body[0])
                if error is not None and not refused:
                    raise error
                raise InterfaceError(f"copy_out: statement did not run a COPY TO STDOUT: {sql[:200]!r}")
            if tag == _ERROR:
                error = self._error(body)
            elif tag == _COPY_IN:
                refused = True  # the server's 57014 answer is ours: report the misuse instead
                yield p.copy_fail("copy_out cannot run COPY FROM STDIN")
            elif tag in (_ROW_DESCRIPTION, _DATA_ROW, _EMPTY_QUERY, _COMMAND_COMPLETE):
                continue
            else:
                self.handle_async(tag, body)

    def copy_out_next(self) -> Gen:
        """Read the next CopyData payloads of a COPY TO STDOUT: what one read brings, at least one.

        Memory stays bounded: the socket is read only when no complete message is buffered.

        Returns:
            ``(chunks, result)``: ``result`` is the COPY's :class:`Result` once ReadyForQuery
            arrived (the end), else ``None``.

        Raises:
            ServerError: The COPY failed midway (after ReadyForQuery).
        """
        chunks: list[bytes] = []
        result: Result | None = None
        error: ServerError | None = None
        parser = self.parser
        while True:
            raw = parser.next_raw()
            if raw is None:
                if chunks and result is None and error is None:  # at the end, read on to ReadyForQuery
                    return chunks, None
                parser.feed((yield None) or b"")
                continue
            tag, body = raw
            if tag == _COPY_DATA:
                chunks.append(body)
            elif tag == _COPY_DONE:
                continue
            elif tag == _COMMAND_COMPLETE:
                result = Result([], body[:-1].decode(), [])
            elif tag == _READY:
                self.status = chr(body[0])
                if error is not None:
                    raise error
                return chunks, result or Result([], "", [])
            elif tag == _ERROR:
                error = self._error(body)
            else:
                self.handle_async(tag, body)

    # -- idle input ---------------------------------------------------------------

    def absorb(self, data: bytes) -> None:
        """Process bytes that arrived while idle (notifications, notices, parameter changes)."""
        parser = self.parser
        parser.feed(data)
        while (raw := parser.next_raw()) is not None:
            self.handle_async(*raw)
