"""The sans-IO session: protocol state plus one generator per operation.

How it works (the psycopg 3 ``generators.py`` pattern, without libpq): each
operation is a generator that *yields what it waits for*.  It yields ``bytes``
when it wants them sent (the shell sends them and resumes it with ``None``) and
``None`` when it needs input (the shell resumes it with the bytes it read; EOF
is the shell's to report).  The generator's return value is the operation's
result; server errors are raised from it only after ReadyForQuery, so the
connection is always left ready for the next command.  ``_waiting.run`` is the
blocking shell; an asyncio shell could drive the same generators.

The session holds the connection's protocol state and the operations that need
it most (startup, simple query, prepare, reading an extended-query answer).  Its
other jobs live beside it: the statement cache in :mod:`._statements`, Bind and
the one-query fast path in :mod:`._bind`, COPY in :mod:`._copy_ops`, pipelining
in :mod:`._pipeline`; each takes the session as an argument.
"""

from __future__ import annotations

import gc
import struct
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from . import protocol as p
from ._result import Result
from ._row_decoder import row_decoder
from ._statements import PreparedStatement, StatementCache
from .auth import SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramClient, md5_password, tls_server_end_point
from .config import PgConfig
from .errors import AuthenticationFailed, ProtocolViolation, ServerError, error_from_fields
from .protocol import (
    AUTHENTICATION,
    BACKEND_KEY_DATA,
    BIND_COMPLETE,
    CLOSE_COMPLETE,
    COMMAND_COMPLETE,
    COPY_DATA,
    COPY_DONE,
    COPY_IN,
    COPY_OUT,
    DATA_ROW,
    EMPTY_QUERY,
    ERROR,
    NEGOTIATE_PROTOCOL_VERSION,
    NO_DATA,
    NOTICE,
    NOTIFICATION,
    PARAMETER_DESCRIPTION,
    PARAMETER_STATUS,
    PARSE_COMPLETE,
    PORTAL_SUSPENDED,
    READY,
    ROW_DESCRIPTION,
)
from .row import Row
from .types import TypeRegistry

_unpack_header = struct.Struct("!BI").unpack_from  # backend message: tag, length (§55.7)

if TYPE_CHECKING:
    from ._result import Gen

__all__ = ["Notification", "Session"]


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
        self.cache = StatementCache(config.statement_cache_capacity)

    # -- asynchronous messages (§55.2.8), accepted at any point ------------------

    def handle_async(self, tag: int, body: bytes) -> None:
        """Handle NoticeResponse, NotificationResponse and ParameterStatus; refuse anything else.

        Raises:
            ProtocolViolation: The message is not one the server may send unprompted.
        """
        if tag == NOTICE:
            fields = p.parse_fields(body)
            self.notices.append(fields)
            if self.notice_handler is not None:
                self.notice_handler(fields)
        elif tag == NOTIFICATION:
            msg = p.decode_message(tag, body)
            assert isinstance(msg, p.NotificationResponse)
            self.notifications.append(Notification(msg.pid, msg.channel, msg.payload))
        elif tag == PARAMETER_STATUS:
            name, value, _ = body.split(b"\x00", 2)
            self.set_parameter(name.decode(), value.decode())
        elif tag == ERROR:
            # An unprompted error is FATAL (admin shutdown, idle timeout): the server closes next.
            self.fatal = error_from_fields(p.parse_fields(body))
        else:
            raise ProtocolViolation(f"unexpected backend message {chr(tag)!r} ({len(body)} bytes)")

    def set_parameter(self, name: str, value: str) -> None:
        self.parameters[name] = value
        if name == "TimeZone":
            self.types.set_timezone(value)

    def server_error(self, body: bytes) -> ServerError:
        """The error an ErrorResponse body describes; a FATAL or PANIC one is kept as :attr:`fatal` too."""
        err = error_from_fields(p.parse_fields(body))
        if err.severity in ("FATAL", "PANIC"):
            self.fatal = err
        return err

    def next_message(self) -> Gen:
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

        ``channel_binding`` follows libpq: with ``require``, no password leaves the client
        unless it goes into a SCRAM-SHA-256-PLUS exchange, and an AuthenticationOk that
        did not come after one (trust, a server that skipped SCRAM) is refused.

        Args:
            tls_certificate: The server certificate (DER) when on TLS, for channel binding.

        Raises:
            AuthenticationFailed: The exchange could not complete, or ``channel_binding=require``
                could not be met (before any password is sent).
        """
        config = self.config
        require_binding = config.channel_binding == "require"
        yield p.startup_message(config.startup_params())
        scram: ScramClient | None = None
        bound = False  # a SCRAM-SHA-256-PLUS exchange completed, its server signature checked
        while True:
            tag, body = yield from self.next_message()
            if tag == AUTHENTICATION:
                msg = p.decode_message(tag, body)
                if isinstance(msg, p.AuthenticationOk):
                    if require_binding and not bound:
                        raise AuthenticationFailed(
                            f"channel_binding=require: the server authenticated user {config.user!r} without "
                            f"channel binding (method {self.auth_method}); connection refused"
                        )
                    continue
                if isinstance(msg, p.AuthenticationSASLFinal):
                    if scram is None:
                        raise AuthenticationFailed("SCRAM: server-final-message without an exchange")
                    scram.verify_server_final(msg.data)
                    bound = scram.mechanism == SCRAM_SHA_256_PLUS
                    continue
                if require_binding:
                    _check_binding_possible(msg, tls_certificate)
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
                    scram = _scram_client(password, msg.mechanisms, tls_certificate, config.channel_binding)
                    self.auth_method = scram.mechanism
                    yield p.sasl_initial_response(scram.mechanism, scram.client_first())
                elif isinstance(msg, p.AuthenticationSASLContinue):
                    if scram is None:
                        raise AuthenticationFailed("SCRAM: server-first-message without an exchange")
                    yield p.sasl_response(scram.client_final(msg.data))
                else:
                    raise AuthenticationFailed(f"unsupported authentication request {msg}")
            elif tag == BACKEND_KEY_DATA:
                self.backend_pid, self.backend_secret = struct.unpack_from("!ii", body, 0)
            elif tag == READY:
                self.status = chr(body[0])
                return None
            elif tag == ERROR:
                raise self.server_error(body)
            elif tag == NEGOTIATE_PROTOCOL_VERSION:  # we ask for nothing optional
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
            if tag == DATA_ROW:
                try:
                    rows.append(decode_row(body, 2))
                except Exception as exc:  # keep reading to ReadyForQuery, then raise
                    failure = failure or exc
            elif tag == ROW_DESCRIPTION:
                columns = p.parse_row_description(body).columns
                names: dict[str, int] = {}
                for i, col in enumerate(columns):
                    names.setdefault(col.name, i)
                decode_row = row_decoder([self.types.text_decoder(col.type_oid) for col in columns], names)
            elif tag in (COMMAND_COMPLETE, EMPTY_QUERY):
                command = body[:-1].decode() if tag == COMMAND_COMPLETE else ""
                self.cache.note_command(command)
                results.append(Result(rows, command, columns))
                rows, columns = [], []
            elif tag == READY:
                self.status = chr(body[0])
                break
            elif tag == ERROR:
                error = self.server_error(body)
            elif tag == COPY_IN:
                yield p.copy_fail("COPY FROM STDIN is not supported by query_simple; use copy_from")
            elif tag in (COPY_OUT, COPY_DATA, COPY_DONE):
                continue  # COPY TO STDOUT through query_simple: data discarded
            else:
                self.handle_async(tag, body)
        if error is not None:
            raise error
        if failure is not None:
            raise failure
        return results

    # -- extended query (§55.2.3) -------------------------------------------------

    def prepare(self, sql: str, cache: bool = True) -> Gen:
        """Parse and describe ``sql``: Parse + Describe(S) + Sync, one round trip.

        Args:
            sql: Query text.
            cache: Whether to name the statement and keep it in the LRU cache.

        Returns:
            The :class:`PreparedStatement`.
        """
        statements = self.cache
        name = statements.reserve_name() if cache else ""
        if name:
            statements.make_room()
        yield statements.take_pending_close() + p.parse(name, sql) + p.describe(b"S", name) + p.sync()
        param_oids: tuple[int, ...] = ()
        columns: list[p.ColumnDescription] = []
        error: ServerError | None = None
        while True:
            tag, body = yield from self.next_message()
            if tag == PARAMETER_DESCRIPTION:
                count = struct.unpack_from("!h", body, 0)[0]
                param_oids = struct.unpack_from(f"!{count}I", body, 2)
            elif tag == ROW_DESCRIPTION:
                columns = p.parse_row_description(body).columns
            elif tag in (PARSE_COMPLETE, NO_DATA, CLOSE_COMPLETE):
                continue
            elif tag == READY:
                self.status = chr(body[0])
                break
            elif tag == ERROR:
                error = self.server_error(body)
            else:
                self.handle_async(tag, body)
        if error is not None:
            raise error
        stmt = PreparedStatement(name, sql, param_oids, columns, self.types)
        if name:
            statements.statements[sql] = stmt
        return stmt

    def read_execute(self, stmt: PreparedStatement) -> Gen:
        """Read the answers to a Bind/Execute batch (:mod:`chopin_pg._bind`) up to ReadyForQuery.

        The messages are walked in place in what each read brought
        (:meth:`~chopin_pg.protocol.MessageParser.take_all`): a DataRow is decoded
        straight from that buffer, without a body copy or a parser call per row
        (measured: a fifth of the time per row of a 100 000-row fetch).

        The cyclic garbage collector is paused while a read's rows are decoded,
        between two reads, never across a ``yield`` (so no other task or caller
        runs with it paused, only another thread for at most one read's work):
        each row allocates four tracked objects (the Row, its tuple, a jsonb
        dict, a UUID), and the collections they set off took 30 % of a 100 000-row
        fetch (benchmarks/pg_profile.py).  The objects are counted all the same;
        the first allocation after the pause collects them if the thresholds say so.
        A collector the application turned off stays off.

        Returns:
            One :class:`Result` per Execute answered.
        """
        decode_row = stmt.decode_row
        decode_rows = stmt.decode_rows
        columns = stmt.columns
        results: list[Result] = []
        rows: list[Row] = []
        append = rows.append
        error: ServerError | None = None
        failure: Exception | None = None
        parser = self.parser
        max_size = parser.max_message_size
        unpack_header = _unpack_header
        counts: dict[str, int] = {}
        data, pos = parser.take_all()
        limit = len(data)
        paused = gc.isenabled()  # the collector, paused by this loop until the next yield
        if paused:
            gc.disable()
        try:
            while True:
                if limit - pos < 5:
                    end = limit + 1  # no whole header: read more
                else:
                    tag, length = unpack_header(data, pos)
                    if length < 4 or length >= max_size:
                        raise parser.refuse_length(tag, length)
                    end = pos + 1 + length
                if end > limit:
                    parser.give_back(data, pos)
                    data, pos = b"", 0  # given back: not again by the finally clause
                    if paused:
                        gc.enable()
                        paused = False
                    received = yield None
                    paused = gc.isenabled()
                    if paused:
                        gc.disable()
                    parser.feed(received or b"")
                    data, pos = parser.take_all()
                    limit = len(data)
                    continue
                if tag == DATA_ROW:
                    if decode_rows is not None:
                        # The C accelerator: every whole DataRow from here in one call.  It
                        # stops where the generated code must decode (below), then goes on.
                        done = decode_rows(data, pos, limit, rows, max_size)
                        if done != pos:
                            pos = done
                            continue
                    try:
                        append(decode_row(data, pos + 7))
                    except Exception as exc:  # keep reading to ReadyForQuery, then raise
                        failure = failure or exc
                    pos = end
                    continue
                if tag == BIND_COMPLETE:  # one per Execute of a batch: no body to look at
                    pos = end
                    continue
                body = data[pos + 5 : end]
                pos = end
                if tag == COMMAND_COMPLETE:
                    # A batch's tags repeat ("INSERT 0 1"): parse each distinct one once.
                    text = body[:-1].decode()
                    count = counts.get(text)
                    if count is None:
                        count = counts[text] = p.parse_command_tag(text)
                    self.cache.note_command(text)  # DDL and ROLLBACK may leave cached plans stale
                    results.append(Result(rows, text, columns, count))
                    rows = []
                    append = rows.append
                elif tag == CLOSE_COMPLETE:
                    continue
                elif tag == READY:
                    self.status = chr(body[0])
                    break
                elif tag == ERROR:
                    error = self.server_error(body)
                elif tag == EMPTY_QUERY:
                    results.append(Result([], "", columns))
                elif tag == PORTAL_SUSPENDED:
                    results.append(Result(rows, "", columns))
                    rows = []
                    append = rows.append
                else:
                    self.handle_async(tag, body)
        finally:
            if paused:
                gc.enable()
            parser.give_back(data, pos)  # what follows ReadyForQuery belongs to the next reader
        if error is not None:
            raise error
        if failure is not None:
            raise failure
        return results

    def send_then(self, data: bytes, then: Gen, received: bytes = b"") -> Gen:
        """Send ``data`` (if any) and feed ``received`` (bytes already read), then run ``then`` (a reader).

        The fast paths use it to hand what they sent or read to the general path.
        """
        if data:
            yield data
        if received:
            self.parser.feed(received)
        return (yield from then)

    def forget_session_state(self) -> None:
        """Forget what DISCARD ALL dropped: every prepared statement, queued notifications and notices.

        Nothing is sent: the statements no longer exist on the server, so no Close is queued for them.
        """
        self.cache.forget()
        self.forget_received()

    def forget_received(self) -> None:
        """Drop the notifications and notices received so far (they belong to the session's previous user)."""
        self.notifications.clear()
        self.notices.clear()

    # -- idle input ---------------------------------------------------------------

    def absorb(self, data: bytes) -> None:
        """Process bytes that arrived while idle (notifications, notices, parameter changes)."""
        parser = self.parser
        parser.feed(data)
        while (raw := parser.next_raw()) is not None:
            self.handle_async(*raw)


# -- channel binding (libpq's channel_binding, PostgreSQL docs §34.1.2 and §55.3.1) ---


def _scram_client(
    password: str, mechanisms: Sequence[str], tls_certificate: bytes | None, channel_binding: str
) -> ScramClient:
    """The SCRAM client for an AuthenticationSASL offer.

    ``prefer`` and ``require`` bind to the TLS channel when the server offers -PLUS;
    without it, the GS2 flag says whether the client could have bound (``y``: it is on
    TLS, so a server that stripped -PLUS from the offer is caught) or not (``n``).
    ``disable`` never binds and says ``n``, as libpq does.
    """
    binding_allowed = channel_binding != "disable" and tls_certificate is not None
    if binding_allowed and SCRAM_SHA_256_PLUS in mechanisms:
        assert tls_certificate is not None
        return ScramClient(password, channel_binding=tls_server_end_point(tls_certificate))
    if SCRAM_SHA_256 in mechanisms:
        return ScramClient(password, client_supports_binding=binding_allowed)
    raise AuthenticationFailed(f"SASL: no supported mechanism in {list(mechanisms)}")


def _check_binding_possible(msg: object, tls_certificate: bytes | None) -> None:
    """Refuse, before any password is sent, a request that cannot end in a bound SCRAM exchange.

    Raises:
        AuthenticationFailed: not on TLS, SCRAM-SHA-256-PLUS not offered, or a password method.
    """
    if isinstance(msg, p.AuthenticationSASLContinue):
        return  # the exchange already started with -PLUS (checked at AuthenticationSASL)
    if isinstance(msg, p.AuthenticationSASL):
        if tls_certificate is None:
            raise AuthenticationFailed(
                "channel_binding=require: the connection does not use TLS, so SCRAM cannot be bound to it "
                "(use sslmode=require or verify-full over TCP); no password was sent"
            )
        if SCRAM_SHA_256_PLUS not in msg.mechanisms:
            raise AuthenticationFailed(
                f"channel_binding=require: the server offers {list(msg.mechanisms)}, not {SCRAM_SHA_256_PLUS}; "
                "no password was sent"
            )
        return
    raise AuthenticationFailed(
        f"channel_binding=require: the server asked for {type(msg).__name__}, which cannot bind to the "
        f"channel (only {SCRAM_SHA_256_PLUS} can); no password was sent"
    )
