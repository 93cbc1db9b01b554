"""h2spec's case list for servers, rewritten in Python, against chopin over a real socket.

h2spec (summerwind/h2spec) is a Go binary no registry we use ships; this module walks
its ``http2`` and ``hpack`` cases with the same numbering (``http2/6.5.2/3`` is the
third case of RFC 7540 section 6.5.2 as h2spec numbers it; RFC 9113 kept the numbers
up to section 8.1, see the README) and the same frames, built with ``hyperframe`` and
``hpack`` or by hand when they must be malformed.  Each case runs on a fresh h2c
(prior knowledge) connection; a few run again over TLS with ALPN ``h2``.

Verdicts are stricter than h2spec's, whose verifiers accept any closed connection as a
connection or stream error: here an error case passes only on a GOAWAY or RST_STREAM
carrying one of the expected codes.  Cases chopin deliberately answers otherwise are
in :data:`DIFFERENT` with the reason; their tests assert the behaviour we chose.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import hpack
import pytest
from apps.tls_support import Chain, client_context

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TIMEOUT = 5.0

# RFC 9113 6: frame types and flags.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
# RFC 9113 7: error codes.
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, COMPRESSION_ERROR = 0x5, 0x6, 0x7, 0x9
# RFC 9113 6.5.2: settings.
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE = 1, 2, 3, 4, 5


@pytest.fixture(scope="module")
def h2c_server(serve_module):
    return serve_module("apps.tls_app:app")


@pytest.fixture(scope="module")
def tls_server(serve_module, chain: Chain):
    return serve_module("apps.tls_app:app", env={"TLS_CERT": str(chain.chain), "TLS_KEY": str(chain.key)})


# -- the client ---------------------------------------------------------------------------


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"", *, length: int | None = None) -> bytes:
    """One frame built by hand (RFC 9113 4.1); ``length`` may lie about the payload."""
    n = len(payload) if length is None else length
    return struct.pack("!I", n)[1:] + struct.pack("!BBI", kind, flags, stream_id) + payload


@dataclass
class Frame:
    kind: int
    flags: int
    stream_id: int
    payload: bytes

    @property
    def error_code(self) -> int:
        """The error code of a GOAWAY or RST_STREAM."""
        offset = 4 if self.kind == GOAWAY else 0
        return int(struct.unpack_from("!I", self.payload, offset)[0])

    def __repr__(self) -> str:
        names = [
            "DATA",
            "HEADERS",
            "PRIORITY",
            "RST_STREAM",
            "SETTINGS",
            "PUSH_PROMISE",
            "PING",
            "GOAWAY",
            "WINDOW_UPDATE",
            "CONTINUATION",
        ]
        name = names[self.kind] if self.kind < len(names) else f"type {self.kind}"
        extra = f" code {self.error_code}" if self.kind in (GOAWAY, RST_STREAM) else ""
        return f"<{name} flags 0x{self.flags:x} stream {self.stream_id} len {len(self.payload)}{extra}>"


class Conn:
    """A raw HTTP/2 client connection: writes whatever bytes a case needs, reads frames."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.encoder = hpack.Encoder()
        self.server_settings: dict[int, int] = {}
        self.seen: list[Frame] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, timeout: float = TIMEOUT) -> Frame | None:
        """The next frame, or None at EOF; raises TimeoutError when nothing comes."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3])
                if len(self.buf) >= 9 + n:
                    kind, flags, sid = struct.unpack_from("!BBI", self.buf, 3)
                    got = Frame(kind, flags, sid & 0x7FFFFFFF, self.buf[9 : 9 + n])
                    self.buf = self.buf[9 + n :]
                    self.seen.append(got)
                    return got
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no frame within {timeout} s; seen {self.seen}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise TimeoutError(f"no frame within {timeout} s; seen {self.seen}") from None
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk

    def handshake(self, settings: dict[int, int] | None = None) -> None:
        """Preface and SETTINGS both ways, both acknowledged (h2spec's ``conn.Handshake``)."""
        self.send(PREFACE + self.settings_frame(settings or {}))
        acked = got_settings = False
        while not (acked and got_settings):
            f = self.read()
            assert f is not None, f"closed during the handshake; seen {self.seen}"
            if f.kind == SETTINGS and not f.flags & ACK:
                for i in range(0, len(f.payload), 6):
                    ident, value = struct.unpack_from("!HI", f.payload, i)
                    self.server_settings[ident] = value
                self.send(frame(SETTINGS, ACK, 0))
                got_settings = True
            elif f.kind == SETTINGS:
                acked = True

    @staticmethod
    def settings_frame(settings: dict[int, int], flags: int = 0) -> bytes:
        return frame(SETTINGS, flags, 0, b"".join(struct.pack("!HI", k, v) for k, v in settings.items()))

    def block(self, headers: list[tuple[str, str]]) -> bytes:
        return self.encoder.encode(headers, huffman=False)

    def headers(
        self, stream_id: int, headers: list[tuple[str, str]] | None = None, *, end_stream: bool = True, flags: int = 0
    ) -> bytes:
        block = self.block(common_headers() if headers is None else headers)
        return frame(HEADERS, flags | END_HEADERS | (END_STREAM if end_stream else 0), stream_id, block)

    # -- verdicts (strict versions of h2spec's verifiers) ---------------------------------

    def connection_error(self, *codes: int) -> None:
        """A GOAWAY with one of ``codes`` (RFC 9113 5.4.1); the connection then closes."""
        while True:
            f = self.read()
            assert f is not None, f"closed without GOAWAY {codes}; seen {self.seen}"
            if f.kind == GOAWAY:
                assert f.error_code in codes, f"GOAWAY {f.error_code}, expected one of {codes}"
                return

    def stream_error(self, *codes: int) -> None:
        """A RST_STREAM (or a GOAWAY, a connection error being allowed too) with one of ``codes``."""
        while True:
            f = self.read()
            assert f is not None, f"closed without RST_STREAM/GOAWAY {codes}; seen {self.seen}"
            if f.kind in (RST_STREAM, GOAWAY):
                assert f.error_code in codes, f"{f!r}, expected one of {codes}"
                return

    def closed(self) -> None:
        """The server closes the connection (a GOAWAY first is fine)."""
        while (f := self.read()) is not None:
            assert f.kind not in (HEADERS, DATA), f"unexpected {f!r}"

    def alive(self) -> None:
        """A PING is answered: the frames before it were ignored, as they should be."""
        self.send(frame(PING, 0, 0, b"h2spec\x00\x00"))
        self.expect(PING, lambda f: bool(f.flags & ACK) and f.payload == b"h2spec\x00\x00")

    def expect(self, kind: int, check: Callable[[Frame], bool] = lambda f: True) -> Frame:
        """Read until a frame of ``kind`` passing ``check``; GOAWAY/RST_STREAM on the way fail."""
        while True:
            f = self.read()
            assert f is not None, f"closed while waiting for frame type {kind}; seen {self.seen}"
            if f.kind == kind and check(f):
                return f
            assert f.kind not in (GOAWAY, RST_STREAM), f"unexpected {f!r} while waiting for type {kind}"

    def stream_closed(self, stream_id: int) -> None:
        """The response on ``stream_id`` ends (h2spec's VerifyStreamClose)."""
        self.expect(DATA, lambda f: f.stream_id == stream_id and bool(f.flags & END_STREAM))


def common_headers(method: str = "GET", path: str = "/") -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1")]


def dummy_headers(count: int = 1) -> list[tuple[str, str]]:
    return [(f"x-dummy{i}", "x" * 16) for i in range(count)]


# -- the cases ------------------------------------------------------------------------------

Case = Callable[[Conn], None]
CASES: dict[str, Case] = {}


def case(case_id: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        assert case_id not in CASES
        CASES[case_id] = fn
        return fn

    return register


# 3.2 / 3.5 Starting HTTP/2, the connection preface.
@case("http2/3.2/1")
def _first_frame_is_settings(c: Conn) -> None:
    c.send(PREFACE + c.settings_frame({INITIAL_WINDOW_SIZE: 65535}))
    first = c.read()
    assert first is not None and first.kind == SETTINGS and not first.flags & ACK


@case("http2/3.5/1")
def _preface(c: Conn) -> None:
    c.send(PREFACE + c.settings_frame({}))
    c.expect(SETTINGS)


@case("http2/3.5/2")
def _invalid_preface(c: Conn) -> None:
    c.send(b"INVALID CONNECTION PREFACE\r\n\r\n")
    c.closed()


# 4.1 Frame format: unknown types, undefined flags and the reserved bit are ignored.
@case("http2/4.1/1")
def _unknown_type(c: Conn) -> None:
    c.handshake()
    c.send(frame(0x16, 0, 0, b"x" * 8))
    c.alive()


@case("http2/4.1/2")
def _undefined_flag(c: Conn) -> None:
    c.handshake()
    c.send(frame(PING, 0x16, 0, b"\x00" * 8))
    c.expect(PING, lambda f: bool(f.flags & ACK))


@case("http2/4.1/3")
def _reserved_bit(c: Conn) -> None:
    c.handshake()
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 0x80000001, c.block(common_headers())))
    c.stream_closed(1)


# 4.2 Frame size.
@case("http2/4.2/1")
def _data_at_max_frame_size(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, common_headers("POST", "/echo"), end_stream=False))
    c.send(frame(DATA, END_STREAM, 1, b"x" * 16384))
    c.expect(HEADERS, lambda f: f.stream_id == 1)


@case("http2/4.2/2")
def _data_over_max_frame_size(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, common_headers("POST", "/echo"), end_stream=False))
    c.send(frame(DATA, END_STREAM, 1, b"x" * (c.server_settings.get(MAX_FRAME_SIZE, 16384) + 1)))
    c.stream_error(FRAME_SIZE_ERROR)


@case("http2/4.2/3")
def _headers_over_max_frame_size(c: Conn) -> None:
    c.handshake()
    limit = c.server_settings.get(MAX_FRAME_SIZE, 16384)
    block = c.block([*common_headers(), *[(f"x-dummy{i}", "x" * 100) for i in range(limit // 100 + 2)]])
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
    c.connection_error(FRAME_SIZE_ERROR)


# 4.3 Header compression.
@case("http2/4.3/1")
def _invalid_header_block(c: Conn) -> None:
    c.handshake()
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, b"\x00\x00\x00\x00\x00"))
    c.connection_error(COMPRESSION_ERROR)


@case("http2/4.3/2")
def _priority_inside_header_block(c: Conn) -> None:
    c.handshake()
    block = c.block(common_headers())
    c.send(frame(HEADERS, END_STREAM, 1, block[:5]) + frame(PRIORITY, 0, 1, b"\x00\x00\x00\x00\x0f"))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/4.3/3")
def _headers_to_other_stream_inside_block(c: Conn) -> None:
    c.handshake()
    block = c.block(common_headers())
    c.send(frame(HEADERS, END_STREAM, 1, block) + frame(HEADERS, END_STREAM | END_HEADERS, 3, block))
    c.connection_error(PROTOCOL_ERROR)


# 5.1 Stream states.
@case("http2/5.1/1")
def _idle_data(c: Conn) -> None:
    c.handshake()
    c.send(frame(DATA, END_STREAM, 1, b"test"))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/5.1/2")
def _idle_rst(c: Conn) -> None:
    c.handshake()
    c.send(frame(RST_STREAM, 0, 1, struct.pack("!I", 0x8)))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/5.1/3")
def _idle_window_update(c: Conn) -> None:
    c.handshake()
    c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack("!I", 100)))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/5.1/4")
def _idle_continuation(c: Conn) -> None:
    c.handshake()
    c.send(frame(CONTINUATION, END_HEADERS, 1, c.block(common_headers())))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/5.1/5")
def _half_closed_data(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1) + frame(DATA, END_STREAM, 1, b"test"))
    c.stream_error(STREAM_CLOSED)


@case("http2/5.1/6")
def _half_closed_headers(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1) + c.headers(1))
    c.stream_error(STREAM_CLOSED)


@case("http2/5.1/7")
def _half_closed_continuation(c: Conn) -> None:
    c.handshake()
    block = c.block(common_headers())
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block) + frame(CONTINUATION, END_HEADERS, 1, block))
    c.stream_error(STREAM_CLOSED, PROTOCOL_ERROR)


@case("http2/5.1/8")
def _closed_data_after_rst(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, end_stream=False) + frame(RST_STREAM, 0, 1, struct.pack("!I", 0x8)))
    c.send(frame(DATA, END_STREAM, 1, b"test"))
    c.stream_error(STREAM_CLOSED)


@case("http2/5.1/9")
def _closed_headers_after_rst(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, end_stream=False) + frame(RST_STREAM, 0, 1, struct.pack("!I", 0x8)))
    c.send(c.headers(1))
    c.stream_error(STREAM_CLOSED)


@case("http2/5.1/10")
def _closed_continuation_after_rst(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, end_stream=False) + frame(RST_STREAM, 0, 1, struct.pack("!I", 0x8)))
    c.send(frame(CONTINUATION, END_HEADERS, 1, c.block(dummy_headers())))
    c.stream_error(STREAM_CLOSED, PROTOCOL_ERROR)


@case("http2/5.1/11")
def _closed_data(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1))
    c.stream_closed(1)
    c.send(frame(DATA, END_STREAM, 1, b"test"))
    # DIFFERENT: answered with a stream error, and the connection goes on.
    c.stream_error(STREAM_CLOSED)
    c.alive()


@case("http2/5.1/12")
def _closed_headers(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1))
    c.stream_closed(1)
    c.send(c.headers(1))
    c.connection_error(STREAM_CLOSED)


@case("http2/5.1/13")
def _closed_continuation(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1))
    c.stream_closed(1)
    c.send(frame(CONTINUATION, END_HEADERS, 1, c.block(dummy_headers())))
    c.connection_error(STREAM_CLOSED, PROTOCOL_ERROR)


# 5.1.1 Stream identifiers.
@case("http2/5.1.1/1")
def _even_stream_id(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(2))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/5.1.1/2")
def _decreasing_stream_id(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(5))
    c.stream_closed(5)
    c.send(c.headers(3))
    c.connection_error(PROTOCOL_ERROR)


# 5.1.2 Stream concurrency.
@case("http2/5.1.2/1")
def _too_many_streams(c: Conn) -> None:
    c.handshake()
    limit = c.server_settings.get(MAX_CONCURRENT_STREAMS)
    assert limit is not None, "the server advertises SETTINGS_MAX_CONCURRENT_STREAMS"
    # Streams left open (no END_STREAM), one more than allowed.
    c.send(b"".join(c.headers(1 + 2 * i, end_stream=False) for i in range(limit + 1)))
    c.stream_error(PROTOCOL_ERROR, REFUSED_STREAM)


# 5.3.1 Stream dependencies.
@case("http2/5.3.1/1")
def _headers_depends_on_itself(c: Conn) -> None:
    c.handshake()
    priority = struct.pack("!IB", 1, 15)
    c.send(frame(HEADERS, END_STREAM | END_HEADERS | PRIORITY_FLAG, 1, priority + c.block(common_headers())))
    c.stream_error(PROTOCOL_ERROR)


@case("http2/5.3.1/2")
def _priority_depends_on_itself(c: Conn) -> None:
    c.handshake()
    c.send(frame(PRIORITY, 0, 1, struct.pack("!IB", 1, 15)))
    c.stream_error(PROTOCOL_ERROR)


# 5.4.1 Connection error handling.
@case("http2/5.4.1/1")
def _invalid_ping_closes(c: Conn) -> None:
    c.handshake()
    c.send(frame(PING, 0, 3, b"\x00" * 8))
    c.closed()


@case("http2/5.4.1/2")
def _invalid_ping_goaway(c: Conn) -> None:
    c.handshake()
    c.send(frame(PING, 0, 3, b"\x00" * 8))
    c.connection_error(PROTOCOL_ERROR)


# 5.5 Extending HTTP/2.
@case("http2/5.5/1")
def _unknown_extension_frame(c: Conn) -> None:
    c.handshake()
    c.send(frame(0xFF, 0, 0, b"unknown"))
    c.alive()


@case("http2/5.5/2")
def _unknown_frame_inside_header_block(c: Conn) -> None:
    c.handshake()
    c.send(frame(HEADERS, END_STREAM, 1, c.block(common_headers())) + frame(0xFF, 0, 1, b"unknown"))
    c.connection_error(PROTOCOL_ERROR)


# 6.1 DATA.
@case("http2/6.1/1")
def _data_stream_zero(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, common_headers("POST", "/echo"), end_stream=False) + frame(DATA, END_STREAM, 0, b"test"))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.1/2")
def _data_half_closed(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1) + frame(DATA, END_STREAM, 1, b"test"))
    c.stream_error(STREAM_CLOSED)


@case("http2/6.1/3")
def _data_bad_padding(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, common_headers("POST", "/echo"), end_stream=False))
    c.send(frame(DATA, END_STREAM | PADDED, 1, b"\x06test"))  # pad length 6 > the 4 bytes left
    c.connection_error(PROTOCOL_ERROR)


# 6.2 HEADERS.
@case("http2/6.2/1")
def _headers_then_priority(c: Conn) -> None:
    c.handshake()
    c.send(frame(HEADERS, END_STREAM, 1, c.block(common_headers())) + frame(PRIORITY, 0, 1, b"\x00\x00\x00\x00\x0f"))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.2/2")
def _headers_then_headers_other_stream(c: Conn) -> None:
    c.handshake()
    block = c.block(common_headers())
    c.send(frame(HEADERS, END_STREAM, 1, block) + frame(HEADERS, END_STREAM | END_HEADERS, 3, block))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.2/3")
def _headers_stream_zero(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(0))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.2/4")
def _headers_bad_padding(c: Conn) -> None:
    c.handshake()
    block = c.block(common_headers())
    c.send(frame(HEADERS, END_STREAM | END_HEADERS | PADDED, 1, bytes([len(block) + 1]) + block))
    c.connection_error(PROTOCOL_ERROR)


# 6.3 PRIORITY.
@case("http2/6.3/1")
def _priority_stream_zero(c: Conn) -> None:
    c.handshake()
    c.send(frame(PRIORITY, 0, 0, b"\x00\x00\x00\x00\x0f"))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.3/2")
def _priority_bad_length(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, common_headers("POST", "/echo"), end_stream=False))
    c.send(frame(PRIORITY, 0, 1, b"\x80\x00\x00\x01"))
    c.stream_error(FRAME_SIZE_ERROR)


# 6.4 RST_STREAM.
@case("http2/6.4/1")
def _rst_stream_zero(c: Conn) -> None:
    c.handshake()
    c.send(frame(RST_STREAM, 0, 0, struct.pack("!I", 0x8)))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.4/2")
def _rst_idle(c: Conn) -> None:
    c.handshake()
    c.send(frame(RST_STREAM, 0, 1, struct.pack("!I", 0x8)))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.4/3")
def _rst_bad_length(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, common_headers("POST", "/echo"), end_stream=False))
    c.send(frame(RST_STREAM, 0, 1, b"\x00\x00\x00"))
    c.connection_error(FRAME_SIZE_ERROR)


# 6.5 SETTINGS.
@case("http2/6.5/1")
def _settings_ack_with_payload(c: Conn) -> None:
    c.handshake()
    c.send(frame(SETTINGS, ACK, 0, struct.pack("!HI", INITIAL_WINDOW_SIZE, 65535)))
    c.connection_error(FRAME_SIZE_ERROR)


@case("http2/6.5/2")
def _settings_on_stream(c: Conn) -> None:
    c.handshake()
    c.send(frame(SETTINGS, 0, 1, struct.pack("!HI", INITIAL_WINDOW_SIZE, 65535)))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.5/3")
def _settings_bad_length(c: Conn) -> None:
    c.handshake()
    c.send(frame(SETTINGS, 0, 0, b"\x00\x04\x00\x00\xff"))
    c.connection_error(FRAME_SIZE_ERROR)


# 6.5.2 Defined SETTINGS parameters.
def _bad_setting(ident: int, value: int, code: int) -> Case:
    def run(c: Conn) -> None:
        c.handshake()
        c.send(c.settings_frame({ident: value}))
        c.connection_error(code)

    return run


CASES["http2/6.5.2/1"] = _bad_setting(ENABLE_PUSH, 2, PROTOCOL_ERROR)
CASES["http2/6.5.2/2"] = _bad_setting(INITIAL_WINDOW_SIZE, 2**31, FLOW_CONTROL_ERROR)
CASES["http2/6.5.2/3"] = _bad_setting(MAX_FRAME_SIZE, 16383, PROTOCOL_ERROR)
CASES["http2/6.5.2/4"] = _bad_setting(MAX_FRAME_SIZE, 16777216, PROTOCOL_ERROR)


@case("http2/6.5.2/5")
def _unknown_setting(c: Conn) -> None:
    c.handshake()
    c.send(c.settings_frame({0xFF: 1}))
    c.expect(SETTINGS, lambda f: bool(f.flags & ACK))


# 6.5.3 Settings synchronization.
@case("http2/6.5.3/1")
def _multiple_initial_window_sizes(c: Conn) -> None:
    c.handshake()
    # The last value wins: 1, so the 5-byte "hello" comes one byte per DATA frame.
    c.send(frame(SETTINGS, 0, 0, struct.pack("!HIHI", INITIAL_WINDOW_SIZE, 100, INITIAL_WINDOW_SIZE, 1)))
    c.expect(SETTINGS, lambda f: bool(f.flags & ACK))
    c.send(c.headers(1))
    data = c.expect(DATA, lambda f: f.stream_id == 1)
    assert len(data.payload) == 1


@case("http2/6.5.3/2")
def _settings_acked(c: Conn) -> None:
    c.handshake()
    c.send(c.settings_frame({INITIAL_WINDOW_SIZE: 65535}))
    c.expect(SETTINGS, lambda f: bool(f.flags & ACK))


# 6.7 PING.
@case("http2/6.7/1")
def _ping(c: Conn) -> None:
    c.handshake()
    c.send(frame(PING, 0, 0, b"h2spec!!"))
    c.expect(PING, lambda f: bool(f.flags & ACK) and f.payload == b"h2spec!!")


@case("http2/6.7/2")
def _ping_ack_not_answered(c: Conn) -> None:
    c.handshake()
    c.send(frame(PING, ACK, 0, b"invalid!") + frame(PING, 0, 0, b"h2spec!!"))
    got = c.expect(PING)
    assert got.flags & ACK and got.payload == b"h2spec!!", "the ACK-flagged PING was answered"


@case("http2/6.7/3")
def _ping_on_stream(c: Conn) -> None:
    c.handshake()
    c.send(frame(PING, 0, 1, b"\x00" * 8))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.7/4")
def _ping_bad_length(c: Conn) -> None:
    c.handshake()
    c.send(frame(PING, 0, 0, b"\x00" * 6))
    c.connection_error(FRAME_SIZE_ERROR)


# 6.8 GOAWAY.
@case("http2/6.8/1")
def _goaway_on_stream(c: Conn) -> None:
    c.handshake()
    c.send(frame(GOAWAY, 0, 1, struct.pack("!II", 0, 0)))
    c.connection_error(PROTOCOL_ERROR)


# 6.9 WINDOW_UPDATE.
@case("http2/6.9/1")
def _window_update_zero(c: Conn) -> None:
    c.handshake()
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack("!I", 0)))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.9/2")
def _window_update_zero_on_stream(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, common_headers("POST", "/echo"), end_stream=False))
    c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack("!I", 0)))
    c.stream_error(PROTOCOL_ERROR)


@case("http2/6.9/3")
def _window_update_bad_length(c: Conn) -> None:
    c.handshake()
    c.send(frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"))
    c.connection_error(FRAME_SIZE_ERROR)


# 6.9.1 The flow-control window.
@case("http2/6.9.1/1")
def _window_of_one(c: Conn) -> None:
    c.handshake({INITIAL_WINDOW_SIZE: 1})
    c.send(c.headers(1))
    data = c.expect(DATA, lambda f: f.stream_id == 1)
    assert len(data.payload) == 1


@case("http2/6.9.1/2")
def _connection_window_overflow(c: Conn) -> None:
    c.handshake()
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack("!I", 2**31 - 1)) * 2)
    c.connection_error(FLOW_CONTROL_ERROR)


@case("http2/6.9.1/3")
def _stream_window_overflow(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, common_headers("POST", "/echo"), end_stream=False))
    c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack("!I", 2**31 - 1)) * 2)
    c.stream_error(FLOW_CONTROL_ERROR)


# 6.9.2 Initial flow-control window size.
@case("http2/6.9.2/1")
def _window_grows_after_headers(c: Conn) -> None:
    c.handshake({INITIAL_WINDOW_SIZE: 0})
    c.send(c.headers(1))
    c.send(c.settings_frame({INITIAL_WINDOW_SIZE: 1}))
    data = c.expect(DATA, lambda f: f.stream_id == 1)
    assert len(data.payload) == 1


@case("http2/6.9.2/2")
def _negative_window(c: Conn) -> None:
    c.handshake({INITIAL_WINDOW_SIZE: 3})
    c.send(c.headers(1))
    first = c.expect(DATA, lambda f: f.stream_id == 1)
    assert len(first.payload) == 3
    # 2 - 3 = -1; a WINDOW_UPDATE of 2 makes it 1: exactly one more byte.
    c.send(c.settings_frame({INITIAL_WINDOW_SIZE: 2}))
    c.expect(SETTINGS, lambda f: bool(f.flags & ACK))
    c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack("!I", 2)))
    data = c.expect(DATA, lambda f: f.stream_id == 1)
    assert len(data.payload) == 1


@case("http2/6.9.2/3")
def _initial_window_too_big(c: Conn) -> None:
    c.handshake()
    c.send(frame(SETTINGS, 0, 0, struct.pack("!HI", INITIAL_WINDOW_SIZE, 2**31)))
    c.connection_error(FLOW_CONTROL_ERROR)


# 6.10 CONTINUATION.
@case("http2/6.10/1")
def _continuations(c: Conn) -> None:
    c.handshake()
    block = c.block([*common_headers(), *dummy_headers(5)])
    third = len(block) // 3
    c.send(
        frame(HEADERS, END_STREAM, 1, block[:third])
        + frame(CONTINUATION, 0, 1, block[third : 2 * third])
        + frame(CONTINUATION, END_HEADERS, 1, block[2 * third :])
    )
    c.expect(HEADERS, lambda f: f.stream_id == 1)


@case("http2/6.10/2")
def _continuation_then_other_frame(c: Conn) -> None:
    c.handshake()
    block = c.block(common_headers())
    c.send(frame(HEADERS, END_STREAM, 1, block[:5]) + frame(CONTINUATION, 0, 1, block[5:]))
    c.send(frame(DATA, END_STREAM, 1, b"test"))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.10/3")
def _continuation_stream_zero(c: Conn) -> None:
    c.handshake()
    block = c.block(common_headers())
    c.send(frame(HEADERS, END_STREAM, 1, block[:5]) + frame(CONTINUATION, END_HEADERS, 0, block[5:]))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.10/4")
def _continuation_after_end_headers(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1) + frame(CONTINUATION, END_HEADERS, 1, c.block(dummy_headers())))
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.10/5")
def _continuation_after_ended_continuation(c: Conn) -> None:
    c.handshake()
    block = c.block(common_headers())
    c.send(
        frame(HEADERS, END_STREAM, 1, block[:5])
        + frame(CONTINUATION, END_HEADERS, 1, block[5:])
        + frame(CONTINUATION, END_HEADERS, 1, c.block(dummy_headers()))
    )
    c.connection_error(PROTOCOL_ERROR)


@case("http2/6.10/6")
def _continuation_after_data(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, common_headers("POST", "/echo"), end_stream=False) + frame(DATA, 0, 1, b"test"))
    c.send(frame(CONTINUATION, END_HEADERS, 1, c.block(dummy_headers())))
    c.connection_error(PROTOCOL_ERROR)


# 7 Error codes: unknown codes trigger nothing special.
@case("http2/7/1")
def _goaway_unknown_code(c: Conn) -> None:
    c.handshake()
    c.send(frame(GOAWAY, 0, 0, struct.pack("!II", 0, 0xFF)))
    c.closed()


@case("http2/7/2")
def _rst_unknown_code(c: Conn) -> None:
    c.handshake()
    c.send(
        c.headers(1, common_headers("POST", "/echo"), end_stream=False) + frame(RST_STREAM, 0, 1, b"\x00\x00\x00\xff")
    )
    c.alive()


# 8.1 HTTP request/response exchange.
@case("http2/8.1/1")
def _second_headers_without_end_stream(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, common_headers("POST", "/echo"), end_stream=False) + frame(DATA, 0, 1, b"test"))
    c.send(c.headers(1, [("x-test", "ok")], end_stream=False))
    c.stream_error(PROTOCOL_ERROR)


def _malformed(headers: Callable[[], list[tuple[str, str]]], trailers: list[tuple[str, str]] | None = None) -> Case:
    """A request whose header block is malformed: a stream error PROTOCOL_ERROR (RFC 9113 8.1.1)."""

    def run(c: Conn) -> None:
        c.handshake()
        if trailers is None:
            c.send(c.headers(1, headers()))
        else:
            c.send(c.headers(1, headers(), end_stream=False) + frame(DATA, 0, 1, b"test"))
            c.send(c.headers(1, trailers))
        c.stream_error(PROTOCOL_ERROR)

    return run


def _with(*extra: tuple[str, str], method: str = "GET") -> Callable[[], list[tuple[str, str]]]:
    return lambda: [*common_headers(method, "/echo" if method == "POST" else "/"), *extra]


def _without(name: str) -> Callable[[], list[tuple[str, str]]]:
    return lambda: [h for h in common_headers() if h[0] != name]


def _twice(name: str) -> Callable[[], list[tuple[str, str]]]:
    return lambda: [*common_headers(), *[h for h in common_headers() if h[0] == name]]


# 8.1.2 HTTP header fields.
CASES["http2/8.1.2/1"] = _malformed(_with(("X-TEST", "ok")))
# 8.1.2.1 Pseudo-header fields.
CASES["http2/8.1.2.1/1"] = _malformed(_with((":test", "ok")))
CASES["http2/8.1.2.1/2"] = _malformed(_with((":status", "200")))
CASES["http2/8.1.2.1/3"] = _malformed(_with(method="POST"), trailers=[(":method", "POST")])
CASES["http2/8.1.2.1/4"] = _malformed(lambda: [("x-test", "ok"), *common_headers()])
# 8.1.2.2 Connection-specific header fields.
CASES["http2/8.1.2.2/1"] = _malformed(_with(("connection", "keep-alive")))
CASES["http2/8.1.2.2/2"] = _malformed(_with(("te", "trailers, deflate")))
# 8.1.2.3 Request pseudo-header fields.
CASES["http2/8.1.2.3/1"] = _malformed(lambda: [(n, "" if n == ":path" else v) for n, v in common_headers()])
CASES["http2/8.1.2.3/2"] = _malformed(_without(":method"))
CASES["http2/8.1.2.3/3"] = _malformed(_without(":scheme"))
CASES["http2/8.1.2.3/4"] = _malformed(_without(":path"))
CASES["http2/8.1.2.3/5"] = _malformed(_twice(":method"))
CASES["http2/8.1.2.3/6"] = _malformed(_twice(":scheme"))
CASES["http2/8.1.2.3/7"] = _malformed(_twice(":path"))


# 8.1.2.6 Malformed requests: content-length against the DATA frames.
@case("http2/8.1.2.6/1")
def _content_length_mismatch(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, [*common_headers("POST", "/echo"), ("content-length", "1")], end_stream=False))
    c.send(frame(DATA, END_STREAM, 1, b"test"))
    c.stream_error(PROTOCOL_ERROR)


@case("http2/8.1.2.6/2")
def _content_length_mismatch_many_frames(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, [*common_headers("POST", "/echo"), ("content-length", "8")], end_stream=False))
    c.send(frame(DATA, 0, 1, b"test") + frame(DATA, 0, 1, b"test") + frame(DATA, END_STREAM, 1, b"test"))
    c.stream_error(PROTOCOL_ERROR)


# 8.2 Server push: a client may not push.
@case("http2/8.2/1")
def _client_push_promise(c: Conn) -> None:
    c.handshake()
    c.send(c.headers(1, end_stream=False))
    c.send(frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack("!I", 2) + c.block(common_headers())))
    c.connection_error(PROTOCOL_ERROR)


# RFC 7541 (HPACK): decoding errors are connection errors COMPRESSION_ERROR.
def _hpack_error(block: Callable[[Conn], bytes]) -> Case:
    def run(c: Conn) -> None:
        c.handshake()
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block(c)))
        c.connection_error(COMPRESSION_ERROR)

    return run


def _after_common(rep: bytes) -> Callable[[Conn], bytes]:
    return lambda c: c.block(common_headers()) + rep


def _table_size_update_too_big(c: Conn) -> bytes:
    size = c.server_settings.get(HEADER_TABLE_SIZE, 4096) + 1
    # RFC 7541 5.1: integer with a 5-bit prefix, then 0x20 marks a size update (6.3).
    rep = bytearray([0x20 | 31])
    size -= 31
    while size >= 128:
        rep.append(0x80 | (size & 0x7F))
        size >>= 7
    rep.append(size)
    return bytes(rep) + c.block(common_headers())


CASES["hpack/2.3.3/1"] = _hpack_error(_after_common(b"\xfe"))  # index 126: past both tables
CASES["hpack/4.2/1"] = _hpack_error(_after_common(b"\x21"))  # a table size update at the end
CASES["hpack/5.2/1"] = _hpack_error(_after_common(b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x49\x50\x9f\xff"))
CASES["hpack/5.2/2"] = _hpack_error(_after_common(b"\x00\x85\xf2\xb2\x4a\x84\xff\x83\x49\x50\x90"))
CASES["hpack/5.2/3"] = _hpack_error(_after_common(b"\x00\x85\xf2\xb2\x4a\x87\xff\xff\xff\xfd\x25\x42\x7f"))
CASES["hpack/6.1/1"] = _hpack_error(_after_common(b"\x80"))  # index 0
CASES["hpack/6.3/1"] = _hpack_error(_table_size_update_too_big)

# Where chopin answers otherwise than h2spec expects, and why (the test asserts our answer).
DIFFERENT: dict[str, str] = {
    "http2/5.1/11": (
        "DATA on a stream both sides ended gets RST_STREAM STREAM_CLOSED (a stream error), "
        "not GOAWAY STREAM_CLOSED; the peer learns the same thing and its other streams live on"
    ),
}

# The cases also run over TLS with ALPN h2 (the same code path after the handshake).
TLS_CASES = ["http2/3.5/1", "http2/4.2/2", "http2/6.7/1", "http2/8.1.2.3/1", "hpack/6.1/1"]


def _connect(host: str, port: int, tls: ssl.SSLContext | None = None) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is None:
        return sock
    wrapped = tls.wrap_socket(sock, server_hostname="localhost")
    assert wrapped.selected_alpn_protocol() == "h2"
    return wrapped


@pytest.mark.parametrize("case_id", list(CASES))
def test_h2spec_case(h2c_server, case_id: str) -> None:
    c = Conn(_connect(h2c_server.host, h2c_server.port))
    try:
        CASES[case_id](c)
    finally:
        c.sock.close()


@pytest.mark.parametrize("case_id", TLS_CASES)
def test_h2spec_case_over_tls(tls_server, chain: Chain, case_id: str) -> None:
    c = Conn(_connect(tls_server.host, tls_server.port, client_context(chain.root)))
    try:
        CASES[case_id](c)
    finally:
        c.sock.close()


def test_case_list_matches_h2spec() -> None:
    groups: dict[str, int] = {}
    for case_id in CASES:
        group = case_id.rsplit("/", 1)[0]
        groups[group] = groups.get(group, 0) + 1
    assert len(CASES) == 103  # 96 http2 (3.2 included), 7 hpack
    assert groups["http2/5.1"] == 13 and groups["http2/8.1.2.3"] == 7 and groups["hpack/5.2"] == 3


SECTION_TITLES = {
    "http2/3": "Starting HTTP/2",
    "http2/4": "HTTP frames",
    "http2/5": "Streams and multiplexing",
    "http2/6": "Frame definitions",
    "http2/7": "Error codes",
    "http2/8": "HTTP message exchanges",
    "hpack/2": "HPACK: indexing tables",
    "hpack/4": "HPACK: dynamic table management",
    "hpack/5": "HPACK: primitive types",
    "hpack/6": "HPACK: binary format",
}


def readme_rows() -> list[str]:
    """The results table's rows, as the README must show them."""
    rows = []
    for section, title in SECTION_TITLES.items():
        ids = [c for c in CASES if c.split(".")[0].split("/", 2)[:2] == section.split("/")]
        differs = sum(1 for c in ids if c in DIFFERENT)
        cells = [f"{section} {title}", len(ids), len(ids) - differs, differs, 0]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return rows


def test_readme_table_matches_the_cases() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
    missing = [row for row in readme_rows() if row not in readme]
    assert not missing, "\n".join(missing)
