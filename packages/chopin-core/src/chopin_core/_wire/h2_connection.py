"""The server side of an HTTP/2 connection (RFC 9113) without I/O: bytes in, events out; calls in, bytes out.

How it works: :meth:`H2ServerConnection.receive_data` checks the client preface,
cuts the bytes into frames (a frame header announcing more than our
``SETTINGS_MAX_FRAME_SIZE`` is refused before its payload is buffered), runs each
frame through the stream states of RFC 9113 5.1 and returns what happened as
events (:class:`RequestReceived`, :class:`DataReceived`, :class:`StreamEnded`,
...).  Header blocks are decoded by the ``decode`` function the caller gives
(HPACK keeps its own state).  The send calls (:meth:`~H2ServerConnection.send_headers`,
:meth:`~H2ServerConnection.send_data`, ...) queue frames that
:meth:`~H2ServerConnection.data_to_send` hands over.

Errors: a *connection error* (RFC 9113 5.4.1) queues GOAWAY and raises
:class:`H2ConnectionError` carrying the code; the connection then refuses
everything.  A *stream error* (5.4.2) queues RST_STREAM and is reported as a
:class:`StreamReset` event with ``remote_reset`` False.  Sending on a stream that
is gone raises :class:`StreamClosedError`.

Bounds: a frame's payload (our MAX_FRAME_SIZE), a header block's fragments
(``max_header_block`` bytes and ``_MAX_CONTINUATIONS`` frames), the inbound
flow-control windows (FLOW_CONTROL_ERROR past them), and the memory of closed
streams (``_CLOSED_KEPT`` ids).

The event and method names follow the ``h2`` library's (``h2.events``,
``H2Connection``), which the tests use as the client and as the reference.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Final, NoReturn

__all__ = [
    "PREFACE",
    "ConnectionTerminated",
    "DataReceived",
    "ErrorCodes",
    "Event",
    "H2ConnectionError",
    "H2ServerConnection",
    "HeaderBlockError",
    "RequestReceived",
    "StreamClosedError",
    "StreamEnded",
    "StreamReset",
    "TrailersReceived",
    "WindowUpdated",
]

# RFC 9113 3.4: the client connection preface.
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# RFC 9113 6: frame types.
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS, _PUSH_PROMISE, _PING, _GOAWAY, _WINDOW_UPDATE, _CONTINUATION = (
    range(10)
)
# RFC 9113 6: flags.
_END_STREAM: Final = 0x1
_ACK: Final = 0x1
_END_HEADERS: Final = 0x4
_PADDED: Final = 0x8
_PRIORITY_FLAG: Final = 0x20
# RFC 9113 6.5.2: setting identifiers.
_HEADER_TABLE_SIZE, _ENABLE_PUSH, _MAX_CONCURRENT_STREAMS, _INITIAL_WINDOW_SIZE, _MAX_FRAME_SIZE = 1, 2, 3, 4, 5
_MAX_HEADER_LIST_SIZE: Final = 6
_MAX_WINDOW: Final = 2**31 - 1  # RFC 9113 6.9.1
_DEFAULT_WINDOW: Final = 65535
_DEFAULT_FRAME: Final = 16384
_MAX_FRAME_LIMIT: Final = 2**24 - 1

# RFC 9113 4.1: length (24 bits), type, flags, reserved bit + stream id.
_FRAME_HEAD: Final = struct.Struct(">HBBBL")  # length as 16 + 8 bits: struct has no 3-byte field
_U32: Final = struct.Struct(">L")
_U32_PAIR: Final = struct.Struct(">LL")
_SETTING: Final = struct.Struct(">HL")
_STREAM_MASK: Final = 0x7FFFFFFF

# Fragments of one header block kept before the connection is cut (CONTINUATION floods).
_MAX_CONTINUATIONS: Final = 64
# Ids of closed streams remembered, to tell "closed" (STREAM_CLOSED) from "never opened" (PROTOCOL_ERROR).
_CLOSED_KEPT: Final = 1024


class ErrorCodes:
    """RFC 9113 7: error codes."""

    NO_ERROR: Final = 0x0
    PROTOCOL_ERROR: Final = 0x1
    INTERNAL_ERROR: Final = 0x2
    FLOW_CONTROL_ERROR: Final = 0x3
    SETTINGS_TIMEOUT: Final = 0x4
    STREAM_CLOSED: Final = 0x5
    FRAME_SIZE_ERROR: Final = 0x6
    REFUSED_STREAM: Final = 0x7
    CANCEL: Final = 0x8
    COMPRESSION_ERROR: Final = 0x9
    CONNECT_ERROR: Final = 0xA
    ENHANCE_YOUR_CALM: Final = 0xB
    INADEQUATE_SECURITY: Final = 0xC
    HTTP_1_1_REQUIRED: Final = 0xD


class H2ConnectionError(Exception):
    """A connection error (RFC 9113 5.4.1): GOAWAY with ``error_code`` is queued, the connection is over."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class StreamClosedError(Exception):
    """A send call named a stream that is closed (or was never opened) on our side."""

    def __init__(self, stream_id: int) -> None:
        super().__init__(f"stream {stream_id} is closed")
        self.stream_id = stream_id


class HeaderBlockError(Exception):
    """Raised by the ``decode`` function given to :class:`H2ServerConnection`: the block cannot be used.

    ``error_code`` is COMPRESSION_ERROR for a block HPACK cannot decode, ENHANCE_YOUR_CALM
    for one that decodes past the header-list bound.
    """

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class Event:
    """Something the peer did; ``stream_id`` is 0 for the connection."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id

    def __repr__(self) -> str:
        names = [name for cls in type(self).__mro__ for name in getattr(cls, "__slots__", ())]
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"<{type(self).__name__} {fields}>"


class RequestReceived(Event):
    """A request's header section (well formed as a field block; :mod:`h2_fields` checks the rest)."""

    __slots__ = ("headers",)

    def __init__(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(stream_id)
        self.headers = headers


class TrailersReceived(RequestReceived):
    """A request's trailer section (it carried END_STREAM)."""

    __slots__ = ()


class DataReceived(Event):
    """Request body bytes; ``flow_controlled_length`` (padding included) is what the application acknowledges."""

    __slots__ = ("data", "flow_controlled_length")

    def __init__(self, stream_id: int, data: bytes, flow_controlled_length: int) -> None:
        super().__init__(stream_id)
        self.data = data
        self.flow_controlled_length = flow_controlled_length


class StreamEnded(Event):
    """The peer ended its side of the stream (END_STREAM)."""

    __slots__ = ()


class StreamReset(Event):
    """The stream is closed by RST_STREAM: the peer's (``remote_reset``) or ours for a stream error."""

    __slots__ = ("error_code", "remote_reset")

    def __init__(self, stream_id: int, error_code: int, remote_reset: bool) -> None:
        super().__init__(stream_id)
        self.error_code = error_code
        self.remote_reset = remote_reset


class WindowUpdated(Event):
    """The peer opened a send window (stream 0: the connection's, or every stream's by SETTINGS)."""

    __slots__ = ("delta",)

    def __init__(self, stream_id: int, delta: int) -> None:
        super().__init__(stream_id)
        self.delta = delta


class ConnectionTerminated(Event):
    """The peer sent GOAWAY."""

    __slots__ = ("error_code", "last_stream_id")

    def __init__(self, error_code: int, last_stream_id: int) -> None:
        super().__init__(0)
        self.error_code = error_code
        self.last_stream_id = last_stream_id


class _StreamError(Exception):
    """Inside frame handling: answer this frame's stream with RST_STREAM ``error_code``."""

    def __init__(self, error_code: int) -> None:
        super().__init__(error_code)
        self.error_code = error_code


class _Stream:
    """One stream's state: which sides are open, its windows, and the request's declared length."""

    __slots__ = ("expected", "in_window", "local_open", "out_window", "received", "remote_open", "unacked")

    def __init__(self, out_window: int, in_window: int) -> None:
        self.remote_open = True
        self.local_open = True
        self.out_window = out_window  # bytes we may send (the peer's window)
        self.in_window = in_window  # bytes the peer may send us
        self.unacked = 0  # bytes received and acknowledged but not yet given back by WINDOW_UPDATE
        self.expected: int | None = None  # content-length
        self.received = 0


def _frame(kind: int, flags: int, stream_id: int, length: int) -> bytes:
    return _FRAME_HEAD.pack(length >> 8, length & 0xFF, kind, flags, stream_id)


def _content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    """The declared content-length, None without one; ValueError when it is not one non-negative integer."""
    found: int | None = None
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():
                raise ValueError(value)
            length = int(value)
            if found is not None and found != length:
                raise ValueError(value)
            found = length
    return found


class H2ServerConnection:
    """The server's side of one HTTP/2 connection.

    Args:
        decode: turns a complete header block into (name, value) pairs; raises
            :class:`HeaderBlockError`.
        encode: turns response fields into a header block.
        settings: what we advertise in our first SETTINGS frame (RFC 9113 6.5.2 identifiers).
        connection_window: the connection's receive window (sent as a WINDOW_UPDATE past 65,535).
        max_header_block: the largest header block (all fragments) we buffer.
    """

    def __init__(
        self,
        decode: Callable[[bytes], list[tuple[bytes, bytes]]],
        encode: Callable[[Sequence[tuple[bytes, bytes]]], bytes],
        settings: dict[int, int],
        connection_window: int,
        max_header_block: int,
    ) -> None:
        self._decode = decode
        self._encode = encode
        self._buf = b""
        self._preface = True  # still waiting for (the rest of) the client preface
        self._first_frame = True  # RFC 9113 3.4: the preface ends with a SETTINGS frame
        self._out: list[bytes | memoryview] = []
        self.closed = False
        self._peer_gone = False  # the peer sent GOAWAY
        self.streams: dict[int, _Stream] = {}
        # Recently closed stream ids, in closing order: True for those we reset.
        self._closed_ids: dict[int, bool] = {}
        self.highest_inbound_stream_id = 0
        self._max_frame = settings.get(_MAX_FRAME_SIZE, _DEFAULT_FRAME)
        self._local_initial = settings.get(_INITIAL_WINDOW_SIZE, _DEFAULT_WINDOW)
        self._settings_acked = False
        self._max_header_block = max_header_block
        # A header block in progress: its stream, flags of its HEADERS frame, fragments.
        self._block_stream = 0
        self._block_flags = 0
        self._block: list[bytes] = []
        self._block_size = 0
        # The peer's settings, as they bound what we send.
        self.max_outbound_frame_size = _DEFAULT_FRAME
        self._remote_initial = _DEFAULT_WINDOW
        self._out_window = _DEFAULT_WINDOW  # connection send window
        self._in_window = max(connection_window, _DEFAULT_WINDOW)  # connection receive window
        self._in_max = self._in_window
        self._unacked = 0
        self.header_table_size: Callable[[int], None] | None = None  # told of the peer's HEADER_TABLE_SIZE
        payload = b"".join(_SETTING.pack(key, value) for key, value in settings.items())
        self._out.append(_frame(_SETTINGS, 0, 0, len(payload)) + payload)
        if connection_window > _DEFAULT_WINDOW:
            # RFC 9113 6.9.2: the connection window starts at 65,535 whatever SETTINGS say.
            self._out.append(_frame(_WINDOW_UPDATE, 0, 0, 4) + _U32.pack(connection_window - _DEFAULT_WINDOW))

    # -- output ---------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """The bytes queued since the last call."""
        out = self._out
        if not out:
            return b""
        data = b"".join(out)
        out.clear()
        return data

    def close_connection(self, error_code: int = ErrorCodes.NO_ERROR) -> None:
        """Queue GOAWAY with ``error_code``; nothing more is received or sent after it."""
        if not self.closed:
            payload = _U32_PAIR.pack(self.highest_inbound_stream_id, error_code)
            self._out.append(_frame(_GOAWAY, 0, 0, 8) + payload)
            self.closed = True

    def goaway_frame(self, error_code: int) -> bytes:
        """A GOAWAY frame naming the highest stream seen, for a caller that sends it itself (graceful stop)."""
        return _frame(_GOAWAY, 0, 0, 8) + _U32_PAIR.pack(self.highest_inbound_stream_id, error_code)

    def _open_stream(self, stream_id: int) -> _Stream:
        stream = self.streams.get(stream_id)
        if stream is None or not stream.local_open or self.closed:
            raise StreamClosedError(stream_id)
        return stream

    def _closing(self, stream_id: int, stream: _Stream, reset: bool = False) -> None:
        """Forget a stream both sides are done with (or that ``reset`` by us); remember its id for a while."""
        del self.streams[stream_id]
        closed = self._closed_ids
        closed[stream_id] = reset
        if len(closed) > _CLOSED_KEPT:
            del closed[next(iter(closed))]

    def send_headers(self, stream_id: int, headers: Sequence[tuple[bytes, bytes]], end_stream: bool = False) -> None:
        """Queue a response's HEADERS (and CONTINUATIONs past the peer's frame size).

        Raises:
            StreamClosedError: our side of the stream is closed.
        """
        stream = self._open_stream(stream_id)
        block = self._encode(headers)
        flags = _END_STREAM if end_stream else 0
        size = self.max_outbound_frame_size
        if len(block) <= size:
            self._out.append(_frame(_HEADERS, flags | _END_HEADERS, stream_id, len(block)))
            self._out.append(block)
        else:
            self._out.append(_frame(_HEADERS, flags, stream_id, size))
            self._out.append(block[:size])
            for at in range(size, len(block), size):
                piece = block[at : at + size]
                last = at + size >= len(block)
                self._out.append(_frame(_CONTINUATION, _END_HEADERS if last else 0, stream_id, len(piece)))
                self._out.append(piece)
        if end_stream:
            self._end_local(stream_id, stream)

    def send_data(self, stream_id: int, data: bytes | memoryview, end_stream: bool = False) -> None:
        """Queue one DATA frame; ``data`` fits the window and the peer's frame size (the caller checked).

        Raises:
            StreamClosedError: our side of the stream is closed.
            ValueError: ``data`` is larger than the window or the frame size allows.
        """
        stream = self._open_stream(stream_id)
        size = len(data)
        if size > stream.out_window or size > self._out_window or size > self.max_outbound_frame_size:
            raise ValueError(f"{size} bytes of DATA past the window or the frame size")
        stream.out_window -= size
        self._out_window -= size
        self._out.append(_frame(_DATA, _END_STREAM if end_stream else 0, stream_id, size))
        if size:
            self._out.append(data)
        if end_stream:
            self._end_local(stream_id, stream)

    def end_stream(self, stream_id: int) -> None:
        """Queue an empty DATA frame with END_STREAM."""
        self.send_data(stream_id, b"", end_stream=True)

    def _end_local(self, stream_id: int, stream: _Stream) -> None:
        stream.local_open = False
        if not stream.remote_open:
            self._closing(stream_id, stream)

    def reset_stream(self, stream_id: int, error_code: int = ErrorCodes.NO_ERROR) -> None:
        """Queue RST_STREAM and close the stream.

        Raises:
            StreamClosedError: the stream is already closed.
        """
        stream = self.streams.get(stream_id)
        if stream is None or self.closed:
            raise StreamClosedError(stream_id)
        self._out.append(_frame(_RST_STREAM, 0, stream_id, 4) + _U32.pack(error_code))
        self._closing(stream_id, stream, reset=True)

    def local_flow_control_window(self, stream_id: int) -> int:
        """How many bytes of DATA the peer lets us send on the stream now.

        Raises:
            StreamClosedError: our side of the stream is closed.
        """
        stream = self._open_stream(stream_id)
        return min(stream.out_window, self._out_window)

    def acknowledge_received_data(self, size: int, stream_id: int) -> None:
        """The application took ``size`` flow-controlled bytes: give the windows back (RFC 9113 6.9).

        A WINDOW_UPDATE goes out once half a window is owed, not for every frame.
        """
        if size <= 0:
            return  # RFC 9113 6.9: a WINDOW_UPDATE of 0 is a protocol error
        self._unacked += size
        if self._unacked >= self._in_max // 2:
            self._out.append(_frame(_WINDOW_UPDATE, 0, 0, 4) + _U32.pack(self._unacked))
            self._in_window += self._unacked
            self._unacked = 0
        stream = self.streams.get(stream_id)
        if stream is not None and stream.remote_open:
            stream.unacked += size
            if stream.unacked >= self._local_initial // 2:
                self._out.append(_frame(_WINDOW_UPDATE, 0, stream_id, 4) + _U32.pack(stream.unacked))
                stream.in_window += stream.unacked
                stream.unacked = 0

    # -- input ----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Take bytes from the peer; the events of the complete frames among them.

        Raises:
            H2ConnectionError: a connection error; GOAWAY is queued.
        """
        if self.closed:
            return []
        buf = self._buf + data if self._buf else data
        events: list[Event] = []
        if self._preface:
            if len(buf) < len(PREFACE):
                if not PREFACE.startswith(buf):
                    self._fail(ErrorCodes.PROTOCOL_ERROR, "invalid client preface")
                self._buf = buf
                return events
            if not buf.startswith(PREFACE):
                self._fail(ErrorCodes.PROTOCOL_ERROR, "invalid client preface")
            self._preface = False
            buf = buf[len(PREFACE) :]
        at = 0
        end = len(buf)
        max_frame = self._max_frame
        try:
            while end - at >= 9:
                high, low, kind, flags, stream_id = _FRAME_HEAD.unpack_from(buf, at)
                length = (high << 8) | low
                if length > max_frame:
                    # Refused from its header: a huge frame is never buffered (RFC 9113 4.2).
                    self._fail(ErrorCodes.FRAME_SIZE_ERROR, f"frame of {length} bytes, over {max_frame}")
                if end - at - 9 < length:
                    break
                payload = buf[at + 9 : at + 9 + length]
                at += 9 + length
                self._on_frame(kind, flags, stream_id & _STREAM_MASK, payload, events)
                if self._peer_gone:  # what arrives after the peer's GOAWAY is dropped
                    at = end
                    break
        finally:
            self._buf = buf[at:] if at < end else b""
        return events

    def _fail(self, code: int, message: str) -> NoReturn:
        self.close_connection(code)
        raise H2ConnectionError(code, message)

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if self._first_frame:
            if kind != _SETTINGS or flags & _ACK:
                self._fail(ErrorCodes.PROTOCOL_ERROR, "the preface's SETTINGS frame is missing")
            self._first_frame = False
        if self._block_stream:
            if kind != _CONTINUATION or stream_id != self._block_stream:
                self._fail(ErrorCodes.PROTOCOL_ERROR, "header block interrupted (RFC 9113 6.10)")
            self._on_continuation(flags, payload, events)
            return
        try:
            if kind == _HEADERS:
                self._on_headers(flags, stream_id, payload, events)
            elif kind == _DATA:
                self._on_data(flags, stream_id, payload, events)
            elif kind == _SETTINGS:
                self._on_settings(flags, stream_id, payload, events)
            elif kind == _WINDOW_UPDATE:
                self._on_window_update(stream_id, payload, events)
            elif kind == _RST_STREAM:
                self._on_rst_stream(stream_id, payload, events)
            elif kind == _PING:
                self._on_ping(flags, stream_id, payload)
            elif kind == _PRIORITY:
                self._on_priority(stream_id, payload)
            elif kind == _GOAWAY:
                self._on_goaway(stream_id, payload, events)
            elif kind == _PUSH_PROMISE:
                self._fail(ErrorCodes.PROTOCOL_ERROR, "PUSH_PROMISE from a client (RFC 9113 8.4)")
            elif kind == _CONTINUATION:
                self._fail(ErrorCodes.PROTOCOL_ERROR, "CONTINUATION without a header block (RFC 9113 6.10)")
            # RFC 9113 4.1: frames of unknown types are ignored.
        except _StreamError as exc:
            self._stream_error(stream_id, exc.error_code, events)

    def _stream_error(self, stream_id: int, code: int, events: list[Event]) -> None:
        """RFC 9113 5.4.2: RST_STREAM ``code``; the stream is closed."""
        self._out.append(_frame(_RST_STREAM, 0, stream_id, 4) + _U32.pack(code))
        stream = self.streams.get(stream_id)
        if stream is not None:
            self._closing(stream_id, stream, reset=True)
            events.append(StreamReset(stream_id, code, False))

    @staticmethod
    def _unpad(flags: int, payload: bytes) -> bytes:
        """RFC 9113 6.1/6.2: the payload without its Pad Length byte and padding."""
        if not flags & _PADDED:
            return payload
        if not payload or payload[0] >= len(payload):
            raise H2ConnectionError(ErrorCodes.PROTOCOL_ERROR, "padding as long as the frame")
        return payload[1 : len(payload) - payload[0]]

    def _on_headers(self, flags: int, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if not stream_id:
            self._fail(ErrorCodes.PROTOCOL_ERROR, "HEADERS on stream 0")
        try:
            fragment = self._unpad(flags, payload)
        except H2ConnectionError as exc:
            self._fail(exc.error_code, str(exc))
        if flags & _PRIORITY_FLAG:
            if len(fragment) < 5:
                self._fail(ErrorCodes.FRAME_SIZE_ERROR, "HEADERS too short for its priority")
            if _U32.unpack_from(fragment)[0] & _STREAM_MASK == stream_id:
                # RFC 9113 5.3.1: a stream cannot depend on itself; the block is still decoded.
                self._begin_block(stream_id, flags, fragment[5:], events, self_dependent=True)
                return
            fragment = fragment[5:]
        self._begin_block(stream_id, flags, fragment, events)

    def _begin_block(
        self, stream_id: int, flags: int, fragment: bytes, events: list[Event], self_dependent: bool = False
    ) -> None:
        if flags & _END_HEADERS:
            self._on_block(stream_id, flags, fragment, events, self_dependent)
            return
        self._block_stream = stream_id
        self._block_flags = flags | (0x100 if self_dependent else 0)
        self._block = [fragment]
        self._block_size = len(fragment)

    def _on_continuation(self, flags: int, payload: bytes, events: list[Event]) -> None:
        self._block.append(payload)
        self._block_size += len(payload)
        if self._block_size > self._max_header_block or len(self._block) > _MAX_CONTINUATIONS:
            self._fail(ErrorCodes.ENHANCE_YOUR_CALM, "header block over its bound in CONTINUATION frames")
        if flags & _END_HEADERS:
            stream_id, head_flags = self._block_stream, self._block_flags
            block = b"".join(self._block)
            self._block_stream = 0
            self._block = []
            try:
                self._on_block(stream_id, head_flags, block, events, bool(head_flags & 0x100))
            except _StreamError as exc:
                self._stream_error(stream_id, exc.error_code, events)

    def _decode_block(self, block: bytes) -> list[tuple[bytes, bytes]]:
        try:
            return self._decode(block)
        except HeaderBlockError as exc:
            self._fail(exc.error_code, str(exc))

    def _on_block(self, stream_id: int, flags: int, block: bytes, events: list[Event], self_dependent: bool) -> None:
        """A complete header block: a new request, or trailers."""
        end_stream = bool(flags & _END_STREAM)
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id <= self.highest_inbound_stream_id:
                reset = self._closed_ids.get(stream_id)
                if reset:
                    # RFC 9113 5.1: frames in flight on a stream we reset are ignored (once decoded).
                    self._decode_block(block)
                    return
                if reset is not None:
                    self._fail(ErrorCodes.STREAM_CLOSED, f"HEADERS on closed stream {stream_id}")
                self._fail(ErrorCodes.PROTOCOL_ERROR, f"stream {stream_id} not above {self.highest_inbound_stream_id}")
            if not stream_id & 1:
                self._fail(ErrorCodes.PROTOCOL_ERROR, f"even stream id {stream_id} from a client")
            headers = self._decode_block(block)  # decoded whatever follows: HPACK state is shared
            self.highest_inbound_stream_id = stream_id
            initial = self._local_initial if self._settings_acked else max(self._local_initial, _DEFAULT_WINDOW)
            stream = self.streams[stream_id] = _Stream(self._remote_initial, initial)
            if self_dependent:
                raise _StreamError(ErrorCodes.PROTOCOL_ERROR)
            try:
                stream.expected = _content_length(headers)
            except ValueError:
                raise _StreamError(ErrorCodes.PROTOCOL_ERROR) from None
            events.append(RequestReceived(stream_id, headers))
            if end_stream:
                self._end_remote(stream_id, stream, events)
            return
        headers = self._decode_block(block)
        if not stream.remote_open:
            self._fail(ErrorCodes.STREAM_CLOSED, f"HEADERS on half-closed stream {stream_id}")
        if self_dependent:
            raise _StreamError(ErrorCodes.PROTOCOL_ERROR)
        if not end_stream:
            # RFC 9113 8.1: a second field block is trailers, and ends the stream.
            self._fail(ErrorCodes.PROTOCOL_ERROR, "trailers without END_STREAM")
        events.append(TrailersReceived(stream_id, headers))
        self._end_remote(stream_id, stream, events)

    def _end_remote(self, stream_id: int, stream: _Stream, events: list[Event]) -> None:
        if stream.expected is not None and stream.expected != stream.received:
            # RFC 9113 8.1.1: content-length must match the DATA received.
            raise _StreamError(ErrorCodes.PROTOCOL_ERROR)
        stream.remote_open = False
        events.append(StreamEnded(stream_id))
        if not stream.local_open:
            self._closing(stream_id, stream)

    def _on_data(self, flags: int, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if not stream_id:
            self._fail(ErrorCodes.PROTOCOL_ERROR, "DATA on stream 0")
        size = len(payload)
        # Flow control counts the whole payload, padding included (RFC 9113 6.9.1).
        if size > self._in_window:
            self._fail(ErrorCodes.FLOW_CONTROL_ERROR, "DATA past the connection window")
        self._in_window -= size
        stream = self.streams.get(stream_id)
        if stream is None or not stream.remote_open:
            if stream is None and stream_id > self.highest_inbound_stream_id:
                self._fail(ErrorCodes.PROTOCOL_ERROR, f"DATA on idle stream {stream_id}")
            self.acknowledge_received_data(size, 0)  # the connection window stays in step
            if stream is None and self._closed_ids.get(stream_id):
                return  # RFC 9113 5.1: frames in flight on a stream we reset are ignored
            raise _StreamError(ErrorCodes.STREAM_CLOSED)
        try:
            data = self._unpad(flags, payload)
        except H2ConnectionError as exc:
            self._fail(exc.error_code, str(exc))
        if size > stream.in_window:
            self._fail(ErrorCodes.FLOW_CONTROL_ERROR, f"DATA past stream {stream_id}'s window")
        stream.in_window -= size
        stream.received += len(data)
        if stream.expected is not None and stream.received > stream.expected:
            self.acknowledge_received_data(size, 0)
            raise _StreamError(ErrorCodes.PROTOCOL_ERROR)
        events.append(DataReceived(stream_id, data, size))
        if flags & _END_STREAM:
            self._end_remote(stream_id, stream, events)

    def _on_settings(self, flags: int, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if stream_id:
            self._fail(ErrorCodes.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & _ACK:
            if payload:
                self._fail(ErrorCodes.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            self._settings_acked = True
            return
        if len(payload) % 6:
            self._fail(ErrorCodes.FRAME_SIZE_ERROR, "SETTINGS payload not a multiple of 6")
        grown = 0
        for at in range(0, len(payload), 6):
            key, value = _SETTING.unpack_from(payload, at)
            if key == _HEADER_TABLE_SIZE:
                if self.header_table_size is not None:
                    self.header_table_size(value)
            elif key == _ENABLE_PUSH:
                if value > 1:
                    self._fail(ErrorCodes.PROTOCOL_ERROR, "ENABLE_PUSH neither 0 nor 1")
            elif key == _INITIAL_WINDOW_SIZE:
                if value > _MAX_WINDOW:
                    self._fail(ErrorCodes.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE over 2^31-1")
                delta = value - self._remote_initial
                self._remote_initial = value
                for stream in self.streams.values():  # RFC 9113 6.9.2
                    stream.out_window += delta
                    if stream.out_window > _MAX_WINDOW:
                        self._fail(ErrorCodes.FLOW_CONTROL_ERROR, "a stream window over 2^31-1")
                grown += max(delta, 0)
            elif key == _MAX_FRAME_SIZE:
                if not _DEFAULT_FRAME <= value <= _MAX_FRAME_LIMIT:
                    self._fail(ErrorCodes.PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range")
                self.max_outbound_frame_size = value
            # MAX_CONCURRENT_STREAMS bounds pushes (we make none); MAX_HEADER_LIST_SIZE is advisory;
            # unknown settings are ignored (RFC 9113 6.5.2).
        self._out.append(_frame(_SETTINGS, _ACK, 0, 0))
        if grown:
            events.append(WindowUpdated(0, grown))

    def _on_window_update(self, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if len(payload) != 4:
            self._fail(ErrorCodes.FRAME_SIZE_ERROR, "WINDOW_UPDATE not 4 bytes")
        delta = _U32.unpack(payload)[0] & _STREAM_MASK
        if not stream_id:
            if not delta:
                self._fail(ErrorCodes.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection")
            self._out_window += delta
            if self._out_window > _MAX_WINDOW:
                self._fail(ErrorCodes.FLOW_CONTROL_ERROR, "connection window over 2^31-1")
            events.append(WindowUpdated(0, delta))
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self.highest_inbound_stream_id:
                self._fail(ErrorCodes.PROTOCOL_ERROR, f"WINDOW_UPDATE on idle stream {stream_id}")
            return  # a closed stream: frames in flight are ignored (RFC 9113 5.1)
        if not delta:
            raise _StreamError(ErrorCodes.PROTOCOL_ERROR)
        stream.out_window += delta
        if stream.out_window > _MAX_WINDOW:
            raise _StreamError(ErrorCodes.FLOW_CONTROL_ERROR)
        events.append(WindowUpdated(stream_id, delta))

    def _on_rst_stream(self, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if len(payload) != 4:
            self._fail(ErrorCodes.FRAME_SIZE_ERROR, "RST_STREAM not 4 bytes")
        if not stream_id:
            self._fail(ErrorCodes.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self.highest_inbound_stream_id:
                self._fail(ErrorCodes.PROTOCOL_ERROR, f"RST_STREAM on idle stream {stream_id}")
            return
        self._closing(stream_id, stream)
        events.append(StreamReset(stream_id, _U32.unpack(payload)[0], True))

    def _on_ping(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            self._fail(ErrorCodes.PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            self._fail(ErrorCodes.FRAME_SIZE_ERROR, "PING not 8 bytes")
        if not flags & _ACK:
            self._out.append(_frame(_PING, _ACK, 0, 8) + payload)

    def _on_priority(self, stream_id: int, payload: bytes) -> None:
        if not stream_id:
            self._fail(ErrorCodes.PROTOCOL_ERROR, "PRIORITY on stream 0")
        if len(payload) != 5:
            raise _StreamError(ErrorCodes.FRAME_SIZE_ERROR)
        if _U32.unpack_from(payload)[0] & _STREAM_MASK == stream_id:
            raise _StreamError(ErrorCodes.PROTOCOL_ERROR)  # RFC 9113 5.3.1

    def _on_goaway(self, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if stream_id:
            self._fail(ErrorCodes.PROTOCOL_ERROR, "GOAWAY on a stream")
        if len(payload) < 8:
            self._fail(ErrorCodes.FRAME_SIZE_ERROR, "GOAWAY under 8 bytes")
        last, code = _U32_PAIR.unpack_from(payload)
        events.append(ConnectionTerminated(code, last & _STREAM_MASK))
        self.closed = self._peer_gone = True  # we send nothing more
