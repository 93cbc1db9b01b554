"""Sans-IO WebSocket protocol (RFC 6455), server side: the opening handshake and the frame codec.

The module never touches a socket or a clock.  It holds two things:

* Handshake helpers (RFC 6455 4.2): :func:`check_upgrade` says whether a request is a
  valid upgrade (and if not, which status answers it), :func:`select_subprotocol` picks a
  subprotocol, :func:`handshake_response` builds the ``101 Switching Protocols`` head and
  :func:`rejection_response` the refusal.
* :class:`WebSocketConnection`, the state machine of one upgraded connection:
  :meth:`~WebSocketConnection.receive_data` turns bytes into events, the ``send_*``
  methods turn messages into bytes, and :meth:`~WebSocketConnection.reply_to` builds the
  answer the protocol requires to a ping, a close or a protocol failure.

Typical use by an I/O loop::

    rejection = check_upgrade(req.method, req.http11, req.headers)
    if rejection is not None:
        sock.sendall(rejection_response(rejection)); close
    sub = select_subprotocol(req.headers.get("sec-websocket-protocol"), ("chat",))
    sock.sendall(handshake_response(req.headers.get("sec-websocket-key"), sub))
    ws = WebSocketConnection()
    for event in ws.receive_data(sock.recv(65536)):
        reply = ws.reply_to(event)      # Pong, echoed Close, or failing Close
        if reply:
            sock.sendall(reply)
        ...                              # hand TextMessage/BinaryMessage to the app
    if ws.closed or ws.broken:
        close the socket
"""

from __future__ import annotations

import base64
import binascii
import codecs
import enum
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol, TypeAlias

from ..errors import ChopinError
from ._abnf import TCHARS
from .ws_deflate import DeflateError, InflatedTooBig, PerMessageDeflate

__all__ = [
    "BinaryMessage",
    "CloseReceived",
    "Event",
    "HeaderLookup",
    "LocalProtocolError",
    "Ping",
    "Pong",
    "ProtocolFailure",
    "TextMessage",
    "UpgradeRejection",
    "WebSocketConnection",
    "WebSocketState",
    "accept_key",
    "check_upgrade",
    "handshake_response",
    "rejection_response",
    "select_subprotocol",
    "wants_upgrade",
]

# -- wire constants -----------------------------------------------------------------

# RFC 6455 1.3 / 4.2.2: the GUID appended to Sec-WebSocket-Key before hashing.
_GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# RFC 6455 5.2: opcodes.
OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

# RFC 6455 5.2: base header (FIN/RSV/opcode, MASK/payload len), then 16- or 64-bit
# extended payload length in network byte order.  Server frames carry no mask.
_HEAD_7: Final = struct.Struct("!BB")
_HEAD_16: Final = struct.Struct("!BBH")
_HEAD_64: Final = struct.Struct("!BBQ")
_LEN_16: Final = struct.Struct("!H")
_LEN_64: Final = struct.Struct("!Q")
# RFC 6455 5.5.1: a close body starts with a 2-byte unsigned status code.
_CLOSE_CODE: Final = struct.Struct("!H")

# RFC 6455 5.5: control frames carry at most 125 bytes; a close reason gets 125 - 2.
_MAX_CONTROL_PAYLOAD: Final = 125
_MAX_CLOSE_REASON: Final = 123

# RFC 6455 7.4.1 / 7.4.2 and the IANA "WebSocket Close Code Number Registry" (RFC 6455
# 11.7): codes an endpoint may put on the wire.  1000-1003 and 1007-1011 are the RFC's,
# 1012 (Service Restart), 1013 (Try Again Later) and 1014 (Bad Gateway) were registered
# later and are sent by real servers and proxies.  1004 is reserved, 1005/1006/1015 are
# "MUST NOT be set" (reported locally only), 0-999 and 1016-2999 are unassigned or
# reserved, 3000-4999 belong to libraries and applications.
_VALID_CLOSE_CODES: Final = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)))

# Close codes this module reports or sends (RFC 6455 7.4.1).
CLOSE_NORMAL: Final = 1000
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_NO_STATUS: Final = 1005
CLOSE_INVALID_DATA: Final = 1007
CLOSE_TOO_BIG: Final = 1009

_DEFAULT_MAX_MESSAGE: Final = 16 * 1024 * 1024

# RFC 9110 5.6.2: token characters, for subprotocol names.
_TCHAR: Final = TCHARS

_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


# -- handshake (RFC 6455 4.2) ---------------------------------------------------------


class HeaderLookup(Protocol):
    """Anything with a case-insensitive ``get(name)``, like :class:`~chopin_core.request.Headers`.

    A plain ``dict`` works when its keys are lower case: names are looked up in lower case.
    """

    def get(self, name: str, /) -> str | None:
        """The value of header ``name`` (repeated fields joined by commas), or ``None``."""


class UpgradeRejection(NamedTuple):
    """Why a request is not a valid WebSocket upgrade, and how to answer it.

    Attributes:
        status: 400 for a malformed handshake, 426 for an unsupported ``Sec-WebSocket-Version``.
        message: what was expected and what came, for the response body.
        headers: extra response header fields (``Sec-WebSocket-Version: 13`` with a 426).
    """

    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


def accept_key(sec_websocket_key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a client's ``Sec-WebSocket-Key`` (RFC 6455 4.2.2).

    Args:
        sec_websocket_key: the key exactly as the client sent it (surrounding whitespace is ignored).

    Returns:
        base64 of the SHA-1 of the key followed by the RFC's GUID.
    """
    digest = hashlib.sha1((sec_websocket_key.strip() + _GUID).encode("ascii"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def _tokens(value: str | None) -> list[str]:
    """The comma-separated tokens of a header value, stripped and lower-cased."""
    if not value:
        return []
    return [t.strip(" \t").lower() for t in value.split(",")]


def wants_upgrade(headers: HeaderLookup) -> bool:
    """True when the request asks to upgrade to WebSocket (``Upgrade: websocket``).

    The router can use this to tell a WebSocket request from a plain one before calling
    :func:`check_upgrade`, which then validates the rest of the handshake.
    """
    return "websocket" in _tokens(headers.get("upgrade"))


def check_upgrade(method: str, http11: bool, headers: HeaderLookup) -> UpgradeRejection | None:
    """Validate a client's opening handshake (RFC 6455 4.2.1).

    Args:
        method: the request method.
        http11: whether the request is HTTP/1.1 (or a later 1.x).
        headers: the request's header fields.

    Returns:
        ``None`` when the request is a valid upgrade; otherwise an :class:`UpgradeRejection`
        whose ``status`` is 426 (with ``Sec-WebSocket-Version: 13`` to send back) when only
        the version is wrong, and 400 for everything else.
    """
    if method != "GET":
        return UpgradeRejection(400, f"WebSocket upgrade: expected method GET, got {method}")
    if not http11:
        return UpgradeRejection(400, "WebSocket upgrade: expected HTTP/1.1, got HTTP/1.0")
    upgrade = headers.get("upgrade")
    if "websocket" not in _tokens(upgrade):
        return UpgradeRejection(400, f"WebSocket upgrade: expected 'Upgrade: websocket', got {upgrade!r}")
    connection = headers.get("connection")
    if "upgrade" not in _tokens(connection):
        return UpgradeRejection(400, f"WebSocket upgrade: expected 'Connection: Upgrade', got {connection!r}")
    version = headers.get("sec-websocket-version")
    if version is None:
        return UpgradeRejection(400, "WebSocket upgrade: Sec-WebSocket-Version missing")
    if version.strip(" \t") != "13":
        # RFC 6455 4.4: answer 426 and list the versions we speak.
        return UpgradeRejection(
            426,
            f"WebSocket upgrade: Sec-WebSocket-Version {version!r} not supported, expected 13",
            (("Sec-WebSocket-Version", "13"),),
        )
    key = headers.get("sec-websocket-key")
    if key is None:
        return UpgradeRejection(400, "WebSocket upgrade: Sec-WebSocket-Key missing")
    # RFC 6455 4.1: the key is a base64-encoded random 16-byte value (24 characters).
    try:
        raw = base64.b64decode(key.strip(" \t").encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) != 16:
        return UpgradeRejection(400, f"WebSocket upgrade: Sec-WebSocket-Key {key!r} is not base64 of 16 bytes")
    return None


def select_subprotocol(offered_header: str | None, supported: Sequence[str]) -> str | None:
    """Pick the subprotocol to confirm (RFC 6455 4.2.2, ``Sec-WebSocket-Protocol``).

    The server's preference wins: the first name in ``supported`` that the client
    offered.  Names compare exactly (subprotocol names are case-sensitive).

    Args:
        offered_header: the client's ``Sec-WebSocket-Protocol`` value (comma-separated), or ``None``.
        supported: the subprotocols the application speaks, most preferred first.

    Returns:
        The chosen name, or ``None`` when nothing matches (the handshake then carries no
        ``Sec-WebSocket-Protocol`` field; the client decides whether to go on).
    """
    if not offered_header or not supported:
        return None
    offered = {name.strip(" \t") for name in offered_header.split(",")}
    for name in supported:
        if name in offered:
            return name
    return None


def _check_field(name: str, value: str) -> None:
    """Refuse header names and values that would break the response head (header injection)."""
    if not name or not set(name) <= _TCHAR:
        raise ValueError(f"response header name {name!r} is not a token")
    if any(c in value for c in "\r\n\x00"):
        raise ValueError(f"response header {name}: value contains CR, LF or NUL")


def handshake_response(
    key: str,
    subprotocol: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """The complete ``101 Switching Protocols`` response head (RFC 6455 4.2.2), CRLFCRLF included.

    Args:
        key: the client's ``Sec-WebSocket-Key`` (already validated by :func:`check_upgrade`).
        subprotocol: the subprotocol to confirm (from :func:`select_subprotocol`), or ``None``.
        extra_headers: more ``(name, value)`` fields, e.g. ``Set-Cookie``.

    Returns:
        The head as bytes, ready to write before the first frame.

    Raises:
        ValueError: a subprotocol or header name is not a token, or a value holds CR/LF/NUL.
    """
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
    ]
    if subprotocol is not None:
        if not subprotocol or not set(subprotocol) <= _TCHAR:
            raise ValueError(f"subprotocol {subprotocol!r} is not a token")
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    for name, value in extra_headers:
        _check_field(name, value)
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_REASONS: Final = {400: "Bad Request", 426: "Upgrade Required"}


def rejection_response(rejection: UpgradeRejection) -> bytes:
    """A complete ``text/plain`` HTTP/1.1 response refusing the upgrade; the connection then closes.

    Args:
        rejection: what :func:`check_upgrade` returned.

    Returns:
        Head and body, with ``Connection: close`` (and ``Upgrade: websocket`` on a 426, RFC 9110 15.5.22).
    """
    body = rejection.message.encode("utf-8")
    reason = _REASONS.get(rejection.status, "Error")
    lines = [
        f"HTTP/1.1 {rejection.status} {reason}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if rejection.status == 426:
        lines.append("Upgrade: websocket")
    for name, value in rejection.headers:
        _check_field(name, value)
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextMessage:
    """Event: a whole text message (fragments joined, UTF-8 validated)."""

    data: str


@dataclass(frozen=True, slots=True)
class BinaryMessage:
    """Event: a whole binary message (fragments joined)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    """Event: the peer sent a ping; answer it with :meth:`WebSocketConnection.reply_to`."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """Event: the peer sent a pong (solicited or not)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """Event: the peer sent a close frame.

    Attributes:
        code: the status code, or 1005 when the frame carried none.
        reason: the UTF-8 reason, possibly empty.
    """

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolFailure:
    """Event: the peer broke the protocol or a limit; always the last event.

    The connection is then in :attr:`WebSocketState.ERROR`: send
    ``reply_to(failure)`` (a close frame with ``code``) and close the socket.

    Attributes:
        code: the close code to fail with (1002 protocol error, 1007 invalid UTF-8, 1009 too big).
        reason: what was expected and what came.
    """

    code: int
    reason: str


Event: TypeAlias = TextMessage | BinaryMessage | Ping | Pong | CloseReceived | ProtocolFailure
"""What :meth:`WebSocketConnection.receive_data` returns."""


class LocalProtocolError(ChopinError, RuntimeError):
    """The application tried to send something the connection's state forbids (e.g. data after close)."""


class _Failure(Exception):
    """Raised inside the decoder; becomes the :class:`ProtocolFailure` event."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WebSocketState(enum.Enum):
    """Where a connection is in its life (RFC 6455 7)."""

    OPEN = "open"
    """Both directions carry messages."""
    CLOSING = "closing"
    """One close frame has been sent or received, not both."""
    CLOSED = "closed"
    """Both close frames went by; the TCP connection should be closed (by the server, RFC 6455 7.1.1)."""
    ERROR = "error"
    """The peer broke the protocol; send the failing close frame and drop the connection.

    Input is ignored from then on.  Until the failing close frame is sent, answers to the
    events that came before the failure can still be sent.
    """


# -- frame codec ------------------------------------------------------------------------


def _unmask(payload: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` repeated (RFC 6455 5.3)."""
    n = len(payload)
    if not n:
        return b""
    # Python has no vectorised bytes XOR; one big-integer XOR runs in C over machine
    # words and is about two orders of magnitude faster than a per-byte loop.
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def _frame(opcode: int, payload: bytes | bytearray | memoryview, rsv1: int = 0) -> bytes:
    """One unmasked, final server frame (RFC 6455 5.2; servers never mask, 5.1).

    ``rsv1`` is ``0x40`` for a compressed message (RFC 7692 6), else 0.
    """
    n = len(payload)
    b0 = 0x80 | rsv1 | opcode
    if n < 126:
        head = _HEAD_7.pack(b0, n)
    elif n < 0x10000:
        head = _HEAD_16.pack(b0, 126, n)
    else:
        head = _HEAD_64.pack(b0, 127, n)
    return head + payload


class WebSocketConnection:
    """The server side of one WebSocket connection, without I/O.

    How it works: :meth:`receive_data` appends bytes to at most one partial frame header
    (< 14 bytes) or one partial frame payload, decodes every whole frame, and returns the
    events they complete.  A frame header is validated as soon as it is read, so an
    oversize frame is refused before its payload is buffered.  Fragments of a message
    are collected until the final one (text is UTF-8 checked fragment by fragment with an
    incremental decoder, and a text frame whose payload arrives over several reads is
    checked read by read, so a bad byte fails the connection when it arrives); control
    frames may arrive between fragments.  Nothing is sent
    automatically: :meth:`reply_to` gives the bytes a ping, a close or a failure needs.

    Buffers and their bounds:

    * a data frame's payload and a fragmented message: ``max_message_size`` total (1009);
    * one data frame: ``max_frame_size`` if set (1009);
    * a control frame: 125 bytes (RFC 6455 5.5, 1002); a partial header: 13 bytes.

    States: OPEN -> CLOSING (one close frame sent or received) -> CLOSED (both); any
    protocol failure -> ERROR.  Once a close frame has been received, or in CLOSED or
    ERROR, :meth:`receive_data` ignores its input and returns ``[]`` (RFC 6455 5.5.1:
    nothing after a close frame is meaningful).

    With ``deflate`` (permessage-deflate negotiated, RFC 7692), a data message whose first
    frame has RSV1 set is inflated fragment by fragment, its inflated size bounded by
    ``max_message_size`` (1009), and every message sent is compressed.  RSV1 on a control
    frame or a continuation frame is a protocol error (RFC 7692 6.1, 1002).

    Args:
        max_message_size: largest message (sum of its fragments, inflated), bytes.
        max_frame_size: largest single data frame, bytes; ``None`` for no bound beyond the message's.
        deflate: the permessage-deflate codec if the handshake negotiated it, else ``None``.
    """

    __slots__ = (
        "_buf",
        "_check_located",
        "_checked",
        "_close_received",
        "_close_sent",
        "_compressed",
        "_decoder",
        "_deflate",
        "_fin",
        "_mask",
        "_max_frame",
        "_max_message",
        "_msg_opcode",
        "_msg_parts",
        "_msg_size",
        "_need",
        "_opcode",
        "_partial",
        "_partial_check",
        "_state",
        "_text_parts",
    )

    def __init__(
        self,
        max_message_size: int = _DEFAULT_MAX_MESSAGE,
        max_frame_size: int | None = None,
        deflate: PerMessageDeflate | None = None,
    ) -> None:
        self._max_message = max_message_size
        self._deflate = deflate
        self._compressed = False  # the message in progress has RSV1 (RFC 7692 6)
        self._max_frame = max_frame_size
        self._state = WebSocketState.OPEN
        self._close_sent = False
        self._close_received = False
        # Decoder: leftover partial header, or the frame whose payload is arriving.
        self._buf = b""
        self._need = 0  # payload bytes still to come; > 0 only while a payload is partial
        self._partial = bytearray()
        self._fin = True
        self._opcode = 0
        self._mask = b""
        # UTF-8 check of a text frame's partial payload (fail fast), and how far it got.
        self._partial_check: codecs.IncrementalDecoder | None = None
        self._checked = 0
        self._check_located = False  # a whole-message text frame: errors say where
        # Fragmented message in progress (_msg_opcode 0 when none).
        self._msg_opcode = 0
        self._msg_size = 0
        self._msg_parts: list[bytes] = []
        self._text_parts: list[str] = []
        self._decoder: codecs.IncrementalDecoder | None = None

    # -- state ------------------------------------------------------------------------

    @property
    def state(self) -> WebSocketState:
        """The current :class:`WebSocketState`."""
        return self._state

    @property
    def closed(self) -> bool:
        """True once close frames went both ways: close the TCP connection."""
        return self._state is WebSocketState.CLOSED

    @property
    def broken(self) -> bool:
        """True once a :class:`ProtocolFailure` was reported: send its close frame and drop the connection."""
        return self._state is WebSocketState.ERROR

    @property
    def close_sent(self) -> bool:
        """True once :meth:`send_close` (or :meth:`reply_to` of a close or failure) produced a close frame."""
        return self._close_sent

    @property
    def close_received(self) -> bool:
        """True once the peer's close frame arrived."""
        return self._close_received

    # -- receiving --------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Consume ``data`` from the peer; return the events it completes, in order.

        Args:
            data: bytes as read from the socket, split anywhere.

        Returns:
            The events.  A :class:`ProtocolFailure`, if any, is last and leaves the
            connection in ERROR; a :class:`CloseReceived` is last too (later bytes are
            ignored).  In CLOSED or ERROR, or after a close was received, returns ``[]``.
        """
        if self._close_received or self._state is WebSocketState.ERROR or self._state is WebSocketState.CLOSED:
            return []
        events: list[Event] = []
        buf = self._buf + data if self._buf else data
        pos = 0
        end = len(buf)
        try:
            while pos < end:
                if self._need:
                    # The rest (or more) of a payload that started in an earlier call.
                    take = min(self._need, end - pos)
                    self._partial += memoryview(buf)[pos : pos + take]
                    pos += take
                    self._need -= take
                    if self._need:
                        if self._partial_check is not None:
                            self._check_partial_text()
                        break
                    payload = _unmask(self._partial, self._mask)
                    self._partial = bytearray()
                    self._partial_check = None
                    event = self._on_frame(self._opcode, self._fin, payload)
                else:
                    parsed = self._read_header(buf, pos, end)
                    if parsed is None:
                        break
                    opcode, fin, length, mask, pos = parsed
                    if end - pos >= length:
                        # Fast path: the whole payload is here.
                        payload = _unmask(buf[pos : pos + length], mask)
                        pos += length
                        event = self._on_frame(opcode, fin, payload)
                    else:
                        self._opcode = opcode
                        self._fin = fin
                        self._mask = mask
                        self._partial = bytearray(memoryview(buf)[pos:end])
                        self._need = length - (end - pos)
                        pos = end
                        text = opcode == OP_TEXT or (opcode == OP_CONTINUATION and self._msg_opcode == OP_TEXT)
                        if text and not self._compressed:
                            self._start_partial_check(opcode, fin)
                        break
                if event is not None:
                    events.append(event)
                    if isinstance(event, CloseReceived):
                        pos = end  # RFC 6455 5.5.1: nothing after a close frame counts
                        break
        except _Failure as exc:
            self._fail()
            events.append(ProtocolFailure(exc.code, exc.reason))
            return events
        self._buf = buf[pos:] if pos < end else b""
        return events

    def _start_partial_check(self, opcode: int, fin: bool) -> None:
        """Begin checking the UTF-8 of a text frame whose payload arrives in pieces.

        Without it an invalid byte early in a large frame is found only once the whole
        frame is in (Autobahn 6.4.3/6.4.4 call that NON-STRICT).  The check carries the
        message's decoder state, so a character split across fragments is no error.
        """
        check = _Utf8Decoder()
        if opcode == OP_CONTINUATION and self._decoder is not None:
            check.setstate(self._decoder.getstate())
        self._partial_check = check
        self._checked = 0
        # Only a whole-message text frame reports where the bad byte is (as _on_frame does).
        self._check_located = opcode == OP_TEXT and fin
        self._check_partial_text()

    def _check_partial_text(self) -> None:
        """UTF-8 check the part of the partial text payload not checked yet (RFC 6455 8.1)."""
        check = self._partial_check
        assert check is not None
        start = self._checked
        end = len(self._partial)
        if start == end:
            return
        # The mask continues where the checked part ended (RFC 6455 5.3: byte i uses mask[i % 4]).
        k = start & 3
        piece = _unmask(memoryview(self._partial)[start:], self._mask[k:] + self._mask[:k])
        self._checked = end
        held = len(check.getstate()[0])  # bytes of a character begun in the last piece
        try:
            check.decode(piece, False)
        except UnicodeDecodeError as exc:
            where = f" at byte {start - held + exc.start}" if self._check_located else ""
            raise _Failure(CLOSE_INVALID_DATA, f"text message is not valid UTF-8: {exc.reason}{where}") from None

    def _fail(self) -> None:
        """Enter ERROR and drop every buffer."""
        self._state = WebSocketState.ERROR
        self._buf = b""
        self._compressed = False
        self._partial_check = None
        self._partial = bytearray()
        self._need = 0
        self._msg_parts = []
        self._text_parts = []
        self._decoder = None

    def _read_header(self, buf: bytes, pos: int, end: int) -> tuple[int, bool, int, bytes, int] | None:
        """Read and validate the frame header at ``pos`` (RFC 6455 5.2).

        Returns ``(opcode, fin, payload length, mask, payload start)``, or ``None`` when
        the header is incomplete.  What can be checked is checked as soon as its bytes
        are here, so a bad or oversize frame fails before its payload is waited for.
        """
        if end - pos < 2:
            return None
        b0 = buf[pos]
        b1 = buf[pos + 1]
        fin = bool(b0 & 0x80)
        opcode = b0 & 0x0F
        rsv = b0 & 0x70
        if rsv and not (rsv == 0x40 and self._deflate is not None and opcode in (OP_TEXT, OP_BINARY)):
            # RFC 6455 5.2: RSV1-3 MUST be 0 unless an extension defines them.  RFC 7692 6:
            # permessage-deflate defines RSV1, on the first frame of a data message only
            # (6.1: never on a control frame or a continuation).
            raise _Failure(CLOSE_PROTOCOL_ERROR, f"frame (opcode 0x{opcode:x}) has reserved bits set (0x{rsv:02x})")
        if not b1 & 0x80:
            # RFC 6455 5.1: the server MUST close on an unmasked client frame.
            raise _Failure(CLOSE_PROTOCOL_ERROR, "client frame is not masked")
        length = b1 & 0x7F
        if opcode & 0x8:
            # RFC 6455 5.5: control frames are never fragmented and carry <= 125 bytes.
            if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                raise _Failure(CLOSE_PROTOCOL_ERROR, f"unknown control opcode 0x{opcode:x}")
            if not fin:
                raise _Failure(CLOSE_PROTOCOL_ERROR, f"control frame (opcode 0x{opcode:x}) is fragmented")
            if length > _MAX_CONTROL_PAYLOAD:
                raise _Failure(CLOSE_PROTOCOL_ERROR, f"control frame payload of {length} bytes, limit 125")
            start = pos + 6
        else:
            if opcode > OP_BINARY:
                raise _Failure(CLOSE_PROTOCOL_ERROR, f"unknown data opcode 0x{opcode:x}")
            # RFC 6455 5.4: continuation frames only inside a message; no new message inside one.
            if opcode == OP_CONTINUATION:
                if not self._msg_opcode:
                    raise _Failure(CLOSE_PROTOCOL_ERROR, "continuation frame without a message in progress")
            elif self._msg_opcode:
                raise _Failure(CLOSE_PROTOCOL_ERROR, "new data frame while a fragmented message is in progress")
            else:
                self._compressed = bool(rsv)
            if length == 126:
                if end - pos < 4:
                    return None
                length = _LEN_16.unpack_from(buf, pos + 2)[0]
                start = pos + 8
            elif length == 127:
                if end - pos < 10:
                    return None
                length = _LEN_64.unpack_from(buf, pos + 2)[0]
                if length >> 63:
                    # RFC 6455 5.2: the most significant bit of a 64-bit length MUST be 0.
                    raise _Failure(CLOSE_PROTOCOL_ERROR, "64-bit payload length has its most significant bit set")
                start = pos + 14
            else:
                start = pos + 6
            # Non-minimal length encodings are accepted: RFC 6455 5.2 says "minimal number
            # of bytes MUST be used" but refusing them protects nothing.
            if self._max_frame is not None and length > self._max_frame:
                raise _Failure(CLOSE_TOO_BIG, f"frame of {length} bytes, limit {self._max_frame}")
            if self._msg_size + length > self._max_message:
                raise _Failure(
                    CLOSE_TOO_BIG, f"message of at least {self._msg_size + length} bytes, limit {self._max_message}"
                )
        if end < start:
            return None
        return opcode, fin, length, buf[start - 4 : start], start

    def _on_frame(self, opcode: int, fin: bool, payload: bytes) -> Event | None:
        """Turn one whole, unmasked frame into an event (``None`` for a non-final fragment)."""
        if self._compressed and opcode <= OP_BINARY:
            return self._on_compressed(opcode, fin, payload)
        if opcode == OP_TEXT:
            if fin:
                try:
                    return TextMessage(payload.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise _Failure(
                        CLOSE_INVALID_DATA, f"text message is not valid UTF-8: {exc.reason} at byte {exc.start}"
                    ) from None
            self._msg_opcode = OP_TEXT
            self._msg_size = len(payload)
            self._decoder = _Utf8Decoder()
            self._text_parts = [self._decode_fragment(payload, final=False)]
            return None
        if opcode == OP_BINARY:
            if fin:
                return BinaryMessage(payload)
            self._msg_opcode = OP_BINARY
            self._msg_size = len(payload)
            self._msg_parts = [payload]
            return None
        if opcode == OP_CONTINUATION:
            self._msg_size += len(payload)
            if self._msg_opcode == OP_TEXT:
                self._text_parts.append(self._decode_fragment(payload, final=fin))
                if not fin:
                    return None
                text = "".join(self._text_parts)
                self._reset_message()
                return TextMessage(text)
            self._msg_parts.append(payload)
            if not fin:
                return None
            data = b"".join(self._msg_parts)
            self._reset_message()
            return BinaryMessage(data)
        if opcode == OP_PING:
            return Ping(payload)
        if opcode == OP_PONG:
            return Pong(payload)
        return self._on_close(payload)

    def _on_compressed(self, opcode: int, fin: bool, payload: bytes) -> Event | None:
        """One frame of a compressed message: inflate it, bounded by the message limit (RFC 7692 7.2.2)."""
        assert self._deflate is not None
        if opcode != OP_CONTINUATION:
            self._msg_opcode = opcode
            self._msg_size = 0
            self._msg_parts = []
        try:
            data = self._deflate.inflate(payload, fin, self._max_message - self._msg_size)
        except InflatedTooBig:
            raise _Failure(
                CLOSE_TOO_BIG, f"compressed message inflates past the limit of {self._max_message} bytes"
            ) from None
        except DeflateError as exc:
            raise _Failure(CLOSE_INVALID_DATA, str(exc)) from None
        self._msg_size += len(data)
        self._msg_parts.append(data)
        if not fin:
            return None
        whole = b"".join(self._msg_parts)
        text = self._msg_opcode == OP_TEXT
        self._reset_message()
        if not text:
            return BinaryMessage(whole)
        try:
            return TextMessage(whole.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise _Failure(
                CLOSE_INVALID_DATA, f"text message is not valid UTF-8: {exc.reason} at byte {exc.start}"
            ) from None

    def _decode_fragment(self, payload: bytes, final: bool) -> str:
        """UTF-8 decode one fragment; a character may straddle fragments (RFC 6455 8.1)."""
        assert self._decoder is not None
        try:
            return self._decoder.decode(payload, final)
        except UnicodeDecodeError as exc:
            raise _Failure(CLOSE_INVALID_DATA, f"text message is not valid UTF-8: {exc.reason}") from None

    def _reset_message(self) -> None:
        self._msg_opcode = 0
        self._compressed = False
        self._msg_size = 0
        self._msg_parts = []
        self._text_parts = []
        self._decoder = None

    def _on_close(self, payload: bytes) -> CloseReceived:
        """Parse a close frame body (RFC 6455 5.5.1) and advance the closing handshake."""
        if not payload:
            code, reason = CLOSE_NO_STATUS, ""
        elif len(payload) == 1:
            raise _Failure(CLOSE_PROTOCOL_ERROR, "close frame payload of 1 byte, expected 0 or at least 2")
        else:
            code = _CLOSE_CODE.unpack_from(payload)[0]
            if code not in _VALID_CLOSE_CODES:
                raise _Failure(CLOSE_PROTOCOL_ERROR, f"close frame with invalid status code {code}")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise _Failure(CLOSE_INVALID_DATA, "close frame reason is not valid UTF-8") from None
        self._close_received = True
        self._state = WebSocketState.CLOSED if self._close_sent else WebSocketState.CLOSING
        self._reset_message()
        return CloseReceived(code, reason)

    # -- sending ----------------------------------------------------------------------

    def _check_can_send(self, what: str) -> None:
        # In ERROR, sending is allowed until the failing close frame goes out: the events
        # returned before the ProtocolFailure were valid and may be answered first
        # (Autobahn 3.2: a message, then a frame with RSV bits: echo, then close 1002).
        if self._close_sent or self._state is WebSocketState.CLOSED:
            raise LocalProtocolError(f"cannot send {what}: connection is {self._state.value} (close already sent)")

    def send_text(self, text: str) -> bytes:
        """One final text frame carrying ``text`` (UTF-8).

        Raises:
            LocalProtocolError: a close frame was already sent.
        """
        self._check_can_send("a text message")
        if self._deflate is not None:
            return _frame(OP_TEXT, self._deflate.compress(text.encode("utf-8")), 0x40)
        return _frame(OP_TEXT, text.encode("utf-8"))

    def send_binary(self, data: bytes | bytearray | memoryview) -> bytes:
        """One final binary frame carrying ``data``.

        Raises:
            LocalProtocolError: a close frame was already sent.
        """
        self._check_can_send("a binary message")
        if self._deflate is not None:
            return _frame(OP_BINARY, self._deflate.compress(data), 0x40)
        return _frame(OP_BINARY, data)

    def send_ping(self, payload: bytes = b"") -> bytes:
        """A ping frame.

        Raises:
            ValueError: ``payload`` is over 125 bytes (RFC 6455 5.5).
            LocalProtocolError: a close frame was already sent.
        """
        self._check_can_send("a ping")
        if len(payload) > _MAX_CONTROL_PAYLOAD:
            raise ValueError(f"ping payload of {len(payload)} bytes, limit 125")
        return _frame(OP_PING, payload)

    def send_pong(self, payload: bytes = b"") -> bytes:
        """A pong frame (an answer to a ping, or unsolicited as a heartbeat, RFC 6455 5.5.3).

        Raises:
            ValueError: ``payload`` is over 125 bytes (RFC 6455 5.5).
            LocalProtocolError: a close frame was already sent.
        """
        self._check_can_send("a pong")
        if len(payload) > _MAX_CONTROL_PAYLOAD:
            raise ValueError(f"pong payload of {len(payload)} bytes, limit 125")
        return _frame(OP_PONG, payload)

    def send_close(self, code: int | None = CLOSE_NORMAL, reason: str = "") -> bytes:
        """A close frame; moves OPEN to CLOSING, or CLOSING (close received) to CLOSED.

        Allowed once, also in ERROR (to fail the connection with the failure's code).

        Args:
            code: the status code (RFC 6455 7.4), or ``None`` for an empty close body.
            reason: UTF-8 text, at most 123 bytes once encoded; needs a code.

        Raises:
            ValueError: the code may not be sent, or the reason is too long or has no code.
            LocalProtocolError: a close frame was already sent.
        """
        if self._close_sent or self._state is WebSocketState.CLOSED:
            raise LocalProtocolError("cannot send a close frame: one was already sent")
        if code is None:
            if reason:
                raise ValueError("a close reason needs a status code")
            payload = b""
        else:
            if code not in _VALID_CLOSE_CODES:
                raise ValueError(f"close code {code} may not be sent (RFC 6455 7.4)")
            encoded = reason.encode("utf-8")
            if len(encoded) > _MAX_CLOSE_REASON:
                raise ValueError(f"close reason of {len(encoded)} bytes, limit 123")
            payload = _CLOSE_CODE.pack(code) + encoded
        self._close_sent = True
        if self._state is WebSocketState.OPEN:
            self._state = WebSocketState.CLOSING
        elif self._state is WebSocketState.CLOSING:
            self._state = WebSocketState.CLOSED
        return _frame(OP_CLOSE, payload)

    def reply_to(self, event: Event) -> bytes | None:
        """The frame the protocol requires in answer to ``event``, or ``None``.

        * :class:`Ping` -> a :class:`Pong` with the same payload (RFC 6455 5.5.2), unless a
          close was already sent;
        * :class:`CloseReceived` -> a close frame echoing the code (an empty body for 1005),
          unless we already sent ours (RFC 6455 5.5.1); the connection is then CLOSED;
        * :class:`ProtocolFailure` -> a close frame with the failure's code and reason
          (RFC 6455 7.1.7), unless a close was already sent;
        * anything else -> ``None``.
        """
        if self._close_sent:
            return None
        if isinstance(event, Ping):
            return self.send_pong(event.payload)
        if isinstance(event, CloseReceived):
            return self.send_close(None if event.code == CLOSE_NO_STATUS else event.code)
        if isinstance(event, ProtocolFailure):
            reason = event.reason.encode("utf-8")[:_MAX_CLOSE_REASON].decode("utf-8", "ignore")
            return self.send_close(event.code, reason)
        return None
