"""Autobahn|Testsuite's fuzzingclient cases, as a Python 3 client against a chopin echo server.

Autobahn's own client is Python 2 only, so this module is our rewrite of its case list
(crossbario/autobahn-testsuite, ``autobahntestsuite/case/``): the same numbering, the
same frames, the same expectation per case.  A case ends in one of Autobahn's verdicts:

* ``OK``: what the case expects, strictly;
* ``NON-STRICT``: allowed, but not the strict behaviour (a UTF-8 error found at the end
  of a frame rather than at the first bad byte);
* ``INFORMATIONAL``: the RFC leaves it open; recorded, never a failure.

A failed expectation raises.  :data:`BEHAVIOUR` pins each case's verdict (``OK`` unless
listed), so a case that gets worse (or better) fails its test.  Sections 12 and 13
(permessage-deflate, RFC 7692) are in ``test_conformance_websocket_deflate.py``, which
uses this module's :class:`Client`.

Section 9 (limits and performance) runs its cases up to 4 MiB by default; the 8 and
16 MiB messages (9.1.5, 9.1.6, 9.2.5, 9.2.6) run with ``CONFORMANCE_LONG=1``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

OK, NON_STRICT, INFORMATIONAL = "OK", "NON-STRICT", "INFORMATIONAL"
LONG = os.environ.get("CONFORMANCE_LONG") == "1"
TIMEOUT = 10.0
# How long a fail-fast case waits for the server to react to a bad fragment: generous,
# so a busy machine does not turn OK into NON-STRICT (a server that fails fast answers
# at once; only a NON-STRICT server makes the case wait this long).
FAIL_FAST_WAIT = 3.0

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MASK = b"\x37\xfa\x21\x3d"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Autobahn's favourite invalid text: "κόσμε", U+D800 encoded (a surrogate), "edited".
KOSME = "κόσμε".encode()
INVALID_UTF8 = KOSME + b"\xed\xa0\x80" + b"edited"


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("apps.ws_app:app")


# -- the client -------------------------------------------------------------------------


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, masked: bool = True) -> bytes:
    """One client frame, built by hand (RFC 6455 5.2); ``rsv`` is the 3 RSV bits as 0-7."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", b0, bit | n)
    elif n < 0x10000:
        head = struct.pack("!BBH", b0, bit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, bit | 127, n)
    if not masked:
        return head + payload
    key = (MASK * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little") if n else b""
    return head + MASK + body


def close_frame(code: int | None = 1000, reason: bytes = b"") -> bytes:
    return frame(OP_CLOSE, b"" if code is None else struct.pack("!H", code) + reason)


@dataclass
class Drained:
    """What came back: messages and pongs in order, the close frame (code, reason), EOF."""

    events: list[tuple[str, bytes]]
    close: tuple[int | None, bytes] | None
    eof: bool


class Client:
    """A WebSocket client over a raw socket that sends whatever frames a case needs."""

    def __init__(self, host: str, port: int, path: str = "/echo", extensions: str | None = None) -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16))
        offer = b"" if extensions is None else b"Sec-WebSocket-Extensions: " + extensions.encode() + b"\r\n"
        self.sock.sendall(
            b"GET " + path.encode() + b" HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n" + offer + b"\r\n"
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed during the handshake"
            self.buf += chunk
        self.eof = False
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status, *lines = head.split(b"\r\n")
        assert status.startswith(b"HTTP/1.1 101 "), head
        fields = {name.strip().lower(): value.strip() for name, _, value in (line.partition(b":") for line in lines)}
        assert fields[b"sec-websocket-accept"] == base64.b64encode(hashlib.sha1(key + GUID).digest())
        # permessage-deflate (RFC 7692), when offered: the server must accept it.
        self.accepted = fields.get(b"sec-websocket-extensions", b"").decode()
        assert bool(self.accepted) == (extensions is not None), f"offer {extensions!r}, answer {self.accepted!r}"
        params = {p.strip() for p in self.accepted.split(";")}
        self.server_reset = "server_no_context_takeover" in params
        self.client_reset = "client_no_context_takeover" in params
        # The windows both sides agreed to (RFC 7692 7.1.2); a subclass may narrow them.
        self.server_bits = self.client_bits = 15
        self.compressor = zlib.compressobj(wbits=-15)
        self.inflater = zlib.decompressobj(wbits=-15)

    def send(self, data: bytes, chop: int | None = None, pause: float = 0.0) -> None:
        """Write ``data``, in pieces of ``chop`` bytes (each its own TCP segment) if given.

        The server may fail the connection halfway (that is what many cases test) and
        close with our later bytes unread, which resets the connection: what it sent
        before is read as we go, so the reset cannot discard it, and writing stops.
        """
        pieces = [data] if chop is None else [data[i : i + chop] for i in range(0, len(data), chop)]
        for piece in pieces:
            self._absorb()
            if self.eof:
                return
            try:
                self.sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                self._absorb()
                return
            if pause:
                time.sleep(pause)

    def _absorb(self) -> None:
        """Take what the server already sent, without waiting."""
        while not self.eof and select.select([self.sock], [], [], 0)[0]:
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk

    def send_frames(self, frames: list[bytes], mode: str = "all") -> None:
        """Autobahn's send modes: all at once, one write per frame, or one write per octet."""
        if mode == "all":
            self.send(b"".join(frames))
        elif mode == "frame":
            for f in frames:
                self.send(f)
                time.sleep(0.002)
        else:
            self.send(b"".join(frames), chop=1)

    def _fill(self, need: int, deadline: float) -> bool:
        while len(self.buf) < need:
            if self.eof:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"waited {TIMEOUT} s for {need - len(self.buf)} more bytes")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                return False
            self.buf += chunk
        return True

    def read_frame(self, timeout: float = TIMEOUT) -> tuple[int, bytes] | None:
        """The next whole server message or control frame, or ``None`` at EOF."""
        deadline = time.monotonic() + timeout
        opcode_of_message = None
        compressed = False
        parts: list[bytes] = []
        while True:
            if not self._fill(2, deadline):
                return None
            b0, b1 = self.buf[0], self.buf[1]
            assert not b1 & 0x80, "server frames are never masked (RFC 6455 5.1)"
            if b0 & 0x70:
                assert self.accepted and b0 & 0x70 == 0x40, "server set RSV bits without an extension"
                assert b0 & 0x0F in (OP_TEXT, OP_BINARY), "RSV1 on a frame other than a message's first"
            n, start = b1 & 0x7F, 2
            if n == 126:
                if not self._fill(4, deadline):
                    return None
                n, start = struct.unpack_from("!H", self.buf, 2)[0], 4
            elif n == 127:
                if not self._fill(10, deadline):
                    return None
                n, start = struct.unpack_from("!Q", self.buf, 2)[0], 10
            if not self._fill(start + n, deadline):
                return None
            payload, self.buf = self.buf[start : start + n], self.buf[start + n :]
            opcode, fin = b0 & 0x0F, bool(b0 & 0x80)
            if opcode >= OP_CLOSE:
                return opcode, payload
            if opcode != OP_CONT:
                opcode_of_message = opcode
                compressed = bool(b0 & 0x40)
            parts.append(payload)
            if fin:
                assert opcode_of_message is not None
                if compressed:
                    return opcode_of_message, self._inflate(b"".join(parts))
                return opcode_of_message, b"".join(parts)

    def _inflate(self, payload: bytes) -> bytes:
        """RFC 7692 7.2.2: append the tail and inflate; a fresh window if the server resets its own."""
        if self.server_reset:
            self.inflater = zlib.decompressobj(wbits=-self.server_bits)
        return self.inflater.decompress(payload + b"\x00\x00\xff\xff")

    def compressed(self, op: int, data: bytes, fragment: int = 0) -> bytes:
        """One compressed message (RFC 7692 7.2.1), in frames of ``fragment`` bytes if given."""
        body = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        if self.client_reset:
            self.compressor = zlib.compressobj(wbits=-self.client_bits)
        body = body[:-4]
        step = fragment or len(body)
        pieces = [body[i : i + step] for i in range(0, len(body), step)]
        return b"".join(
            frame(op if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1, rsv=4 if i == 0 else 0)
            for i, p in enumerate(pieces)
        )

    def drain(self, timeout: float = TIMEOUT) -> Drained:
        """Read until the server's close frame and then its EOF."""
        events: list[tuple[str, bytes]] = []
        close: tuple[int | None, bytes] | None = None
        deadline = time.monotonic() + timeout
        while True:
            got = self.read_frame(max(0.01, deadline - time.monotonic()))
            if got is None:
                return Drained(events, close, True)
            opcode, payload = got
            if close is not None:
                raise AssertionError(f"frame 0x{opcode:x} after the server's close frame")
            if opcode == OP_CLOSE:
                code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else None
                close = (code, payload[2:])
            else:
                events.append(
                    ({OP_TEXT: "text", OP_BINARY: "binary", OP_PING: "ping", OP_PONG: "pong"}[opcode], payload)
                )

    def nothing_yet(self, wait: float) -> bool:
        """True when the server sent nothing (and did not close) within ``wait`` seconds."""
        if self.buf or self.eof:
            return False
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(1 << 20)
        except TimeoutError:
            return True
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


# -- verdicts ---------------------------------------------------------------------------


def text(payload: bytes | str) -> tuple[str, bytes]:
    return ("text", payload.encode() if isinstance(payload, str) else payload)


def binary(payload: bytes) -> tuple[str, bytes]:
    return ("binary", payload)


def pong(payload: bytes = b"") -> tuple[str, bytes]:
    return ("pong", payload)


def closes_cleanly(c: Client, events: list[tuple[str, bytes]], *, codes: tuple[int | None, ...] = (1000,)) -> str:
    """We close with 1000: the expected events, then the server's close (``codes``), then its EOF."""
    c.send(close_frame(1000))
    got = c.drain()
    assert got.events == events, f"expected {summary(events)}, got {summary(got.events)}"
    assert got.close is not None, "no close frame from the server"
    assert got.close[0] in codes, f"close code {got.close[0]}, expected one of {codes}"
    assert got.eof
    return OK


def fails(c: Client, events: list[tuple[str, bytes]] | None = None, *, codes: tuple[int, ...] = (1002,)) -> str:
    """The server fails the connection: the expected events, then a close with ``codes`` (or just EOF)."""
    got = c.drain()
    assert got.events == (events or []), f"expected {summary(events or [])}, got {summary(got.events)}"
    assert got.close is None or got.close[0] in codes, f"close code {got.close[0]}, expected one of {codes}"
    assert got.eof
    return OK


def answers_close(c: Client, close_payload: bytes, codes: tuple[int | None, ...]) -> str:
    """We send a close frame; the server answers with one of ``codes`` and drops the connection."""
    c.send(frame(OP_CLOSE, close_payload))
    got = c.drain()
    assert got.events == []
    assert got.close is not None and got.close[0] in codes, f"close {got.close}, expected one of {codes}"
    assert got.eof
    return OK


def summary(events: list[tuple[str, bytes]]) -> list[tuple[str, int, bytes]]:
    return [(kind, len(data), data[:20]) for kind, data in events]


# -- the cases --------------------------------------------------------------------------

Case = Callable[[Client], str]
CASES: dict[str, Case] = {}


def case(case_id: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[case_id] = fn
        return fn

    return register


def add(case_id: str, fn: Case) -> None:
    CASES[case_id] = fn


# 1 Framing: text (1.1.x) and binary (1.2.x) messages of lengths around the 7/16/64-bit
# length encodings; x.8 writes the frame in chops of 997 bytes.
_SIZES = [0, 125, 126, 127, 128, 65535, 65536, 65536]
for _sub, _op, _fill in [(1, OP_TEXT, b"*"), (2, OP_BINARY, b"\xfe")]:
    for _i, _n in enumerate(_SIZES, 1):

        def _framing(c: Client, op: int = _op, data: bytes = _fill * _n, chop: int | None = 997 if _i == 8 else None):
            c.send(frame(op, data), chop=chop)
            return closes_cleanly(c, [("text" if op == OP_TEXT else "binary", data)])

        add(f"1.{_sub}.{_i}", _framing)


# 2 Pings and pongs.
@case("2.1")
def _ping_empty(c: Client) -> str:
    c.send(frame(OP_PING))
    return closes_cleanly(c, [pong()])


@case("2.2")
def _ping_text(c: Client) -> str:
    c.send(frame(OP_PING, b"Hello, world!"))
    return closes_cleanly(c, [pong(b"Hello, world!")])


@case("2.3")
def _ping_binary(c: Client) -> str:
    c.send(frame(OP_PING, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"))
    return closes_cleanly(c, [pong(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")])


@case("2.4")
def _ping_125(c: Client) -> str:
    c.send(frame(OP_PING, b"\xfe" * 125))
    return closes_cleanly(c, [pong(b"\xfe" * 125)])


@case("2.5")
def _ping_126(c: Client) -> str:
    c.send(frame(OP_PING, b"\xfe" * 126))
    return fails(c)


@case("2.6")
def _ping_125_octetwise(c: Client) -> str:
    c.send(frame(OP_PING, b"\xfe" * 125), chop=1)
    return closes_cleanly(c, [pong(b"\xfe" * 125)])


@case("2.7")
def _unsolicited_pong(c: Client) -> str:
    c.send(frame(OP_PONG))
    return closes_cleanly(c, [])


@case("2.8")
def _unsolicited_pong_payload(c: Client) -> str:
    c.send(frame(OP_PONG, b"unsolicited pong payload"))
    return closes_cleanly(c, [])


@case("2.9")
def _unsolicited_pong_then_ping(c: Client) -> str:
    c.send(frame(OP_PONG, b"unsolicited pong payload") + frame(OP_PING, b"ping payload"))
    return closes_cleanly(c, [pong(b"ping payload")])


def _ten_pings(c: Client, chop: int | None) -> str:
    pings = [f"payload-{i}".encode() for i in range(10)]
    c.send(b"".join(frame(OP_PING, p) for p in pings), chop=chop)
    return closes_cleanly(c, [pong(p) for p in pings])


add("2.10", lambda c: _ten_pings(c, None))
add("2.11", lambda c: _ten_pings(c, 1))


# 3 Reserved bits: a frame with RSV set fails the connection (1002); what came before is
# answered first.
@case("3.1")
def _rsv1(c: Client) -> str:
    c.send(frame(OP_TEXT, b"Hello, world!", rsv=1))
    return fails(c)


def _rsv_after_message(c: Client, rsv: int, mode: str) -> str:
    c.send_frames([frame(OP_TEXT, b"Hello, world!"), frame(OP_TEXT, b"Hello, world!", rsv=rsv), frame(OP_PING)], mode)
    return fails(c, [text("Hello, world!")])


add("3.2", lambda c: _rsv_after_message(c, 2, "all"))
add("3.3", lambda c: _rsv_after_message(c, 3, "frame"))
add("3.4", lambda c: _rsv_after_message(c, 4, "octet"))


@case("3.5")
def _rsv5_binary(c: Client) -> str:
    c.send(frame(OP_BINARY, bytes(range(256)) * 4, rsv=5))
    return fails(c)


@case("3.6")
def _rsv6_ping(c: Client) -> str:
    c.send(frame(OP_PING, b"Hello, world!", rsv=6))
    return fails(c)


@case("3.7")
def _rsv7_close(c: Client) -> str:
    c.send(frame(OP_CLOSE, struct.pack("!H", 1000), rsv=7))
    return fails(c)


# 4 Reserved opcodes: non-control 3-7 (4.1.x) and control 11-15 (4.2.x) fail the connection.
def _reserved_opcode(opcode: int, payload: bytes, wrapped: bool, mode: str) -> Case:
    def run(c: Client) -> str:
        if not wrapped:
            c.send(frame(opcode, payload))
            return fails(c)
        c.send_frames([frame(OP_TEXT, b"Hello, world!"), frame(opcode, payload), frame(OP_PING)], mode)
        return fails(c, [text("Hello, world!")])

    return run


for _group, _opcodes in ((1, (3, 4, 5, 6, 7)), (2, (11, 12, 13, 14, 15))):
    for _i, (_opcode, _payload, _wrapped, _mode) in enumerate(
        zip(
            _opcodes,
            (b"", b"reserved opcode payload", b"", b"reserved opcode payload", b"reserved opcode payload"),
            (False, False, True, True, True),
            ("all", "all", "all", "all", "octet"),
            strict=True,
        ),
        1,
    ):
        add(f"4.{_group}.{_i}", _reserved_opcode(_opcode, _payload, _wrapped, _mode))


# 5 Fragmentation.
def _fragmented_control(opcode: int) -> Case:
    def run(c: Client) -> str:
        c.send(frame(opcode, b"fragment1", fin=False) + frame(OP_CONT, b"fragment2"))
        return fails(c)

    return run


add("5.1", _fragmented_control(OP_PING))
add("5.2", _fragmented_control(OP_PONG))


def _two_fragments(mode: str, ping_between: bool) -> Case:
    def run(c: Client) -> str:
        frames = [frame(OP_TEXT, b"fragment1", fin=False), frame(OP_CONT, b"fragment2")]
        if ping_between:
            frames.insert(1, frame(OP_PING, b"ping payload"))
        c.send_frames(frames, mode)
        expected = [pong(b"ping payload")] if ping_between else []
        return closes_cleanly(c, [*expected, text("fragment1fragment2")])

    return run


for _i, (_mode, _ping) in enumerate(
    [("all", False), ("frame", False), ("octet", False), ("all", True), ("frame", True), ("octet", True)], 3
):
    add(f"5.{_i}", _two_fragments(_mode, _ping))


def _stray_continuation(fin: bool, mode: str) -> Case:
    def run(c: Client) -> str:
        c.send_frames([frame(OP_CONT, b"non-continuation payload", fin=fin), frame(OP_TEXT, b"Hello, world!")], mode)
        return fails(c)

    return run


for _i, (_fin, _mode) in enumerate(
    [(True, "all"), (True, "frame"), (True, "octet"), (False, "all"), (False, "frame"), (False, "octet")], 9
):
    add(f"5.{_i}", _stray_continuation(_fin, _mode))


@case("5.15")
def _continuation_after_message(c: Client) -> str:
    c.send(
        frame(OP_TEXT, b"fragment1", fin=False)
        + frame(OP_CONT, b"fragment2")
        + frame(OP_CONT, b"fragment3", fin=False)
        + frame(OP_TEXT, b"fragment4")
    )
    return fails(c, [text("fragment1fragment2")])


@case("5.16")
def _continuation_first_twice(c: Client) -> str:
    group = frame(OP_CONT, b"fragment1", fin=False) + frame(OP_TEXT, b"fragment2", fin=False) + frame(OP_CONT, b"3")
    c.send(group * 2)
    return fails(c)


@case("5.17")
def _final_continuation_first_twice(c: Client) -> str:
    group = frame(OP_CONT, b"fragment1") + frame(OP_TEXT, b"fragment2", fin=False) + frame(OP_CONT, b"3")
    c.send(group * 2)
    return fails(c)


@case("5.18")
def _two_text_openers(c: Client) -> str:
    c.send(frame(OP_TEXT, b"fragment1", fin=False) + frame(OP_TEXT, b"fragment2"))
    return fails(c)


def _five_fragments_with_pings(per_frame: bool) -> Case:
    def run(c: Client) -> str:
        frames = [
            frame(OP_TEXT, b"fragment1", fin=False),
            frame(OP_CONT, b"fragment2", fin=False),
            frame(OP_PING, b"pongme 1!"),
            frame(OP_CONT, b"fragment3", fin=False),
            frame(OP_CONT, b"fragment4", fin=False),
            frame(OP_PING, b"pongme 2!"),
            frame(OP_CONT, b"fragment5"),
        ]
        # Autobahn sleeps a second between fragments; a pause is enough to make the
        # pings arrive while the message is incomplete.
        for f in frames:
            c.send(f)
            if per_frame:
                time.sleep(0.05)
        return closes_cleanly(
            c, [pong(b"pongme 1!"), pong(b"pongme 2!"), text("fragment1fragment2fragment3fragment4fragment5")]
        )

    return run


add("5.19", _five_fragments_with_pings(False))
add("5.20", _five_fragments_with_pings(True))


# 6 UTF-8 handling.
@case("6.1.1")
def _empty_text(c: Client) -> str:
    c.send(frame(OP_TEXT))
    return closes_cleanly(c, [text("")])


@case("6.1.2")
def _empty_fragments(c: Client) -> str:
    c.send(frame(OP_TEXT, fin=False) + frame(OP_CONT, fin=False) + frame(OP_CONT))
    return closes_cleanly(c, [text("")])


@case("6.1.3")
def _empty_fragments_around(c: Client) -> str:
    c.send(frame(OP_TEXT, fin=False) + frame(OP_CONT, b"middle frame payload", fin=False) + frame(OP_CONT))
    return closes_cleanly(c, [text("middle frame payload")])


HELLO_UTF8 = "Hello-µ@ßöäüàá-UTF-8!!".encode()


def _valid_text_fragments(payload: bytes, pieces: list[bytes]) -> Case:
    def run(c: Client) -> str:
        frames = [frame(OP_TEXT if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1) for i, p in enumerate(pieces)]
        c.send(b"".join(frames))
        return closes_cleanly(c, [text(payload)])

    return run


add("6.2.1", _valid_text_fragments(HELLO_UTF8, [HELLO_UTF8]))
add("6.2.2", _valid_text_fragments(HELLO_UTF8, [HELLO_UTF8[:12], HELLO_UTF8[12:]]))  # on a code point boundary
add("6.2.3", _valid_text_fragments(HELLO_UTF8, [bytes([b]) for b in HELLO_UTF8]))
_KOSME_BYTES = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
add("6.2.4", _valid_text_fragments(_KOSME_BYTES, [bytes([b]) for b in _KOSME_BYTES]))


@case("6.3.1")
def _invalid_one_fragment(c: Client) -> str:
    c.send(frame(OP_TEXT, INVALID_UTF8))
    return fails(c, codes=(1007,))


@case("6.3.2")
def _invalid_octet_fragments(c: Client) -> str:
    c.send(
        b"".join(
            frame(OP_TEXT if i == 0 else OP_CONT, bytes([b]), fin=i == len(INVALID_UTF8) - 1)
            for i, b in enumerate(INVALID_UTF8)
        )
    )
    return fails(c, codes=(1007,))


def _fail_fast(parts: list[bytes], *, one_frame: bool) -> Case:
    """6.4.x: three parts with pauses; the server should fail on the second (OK), or at least
    once the whole message is in (NON-STRICT)."""

    def run(c: Client) -> str:
        payload = b"".join(parts)
        if one_frame:
            whole = frame(OP_TEXT, payload)
            head = len(whole) - len(payload)
            cut1, cut2 = head + len(parts[0]), head + len(parts[0]) + len(parts[1])
            chunks = [whole[:cut1], whole[cut1:cut2], whole[cut2:]]
        else:
            chunks = [
                frame(OP_TEXT, parts[0], fin=False),
                frame(OP_CONT, parts[1], fin=False),
                frame(OP_CONT, parts[2]),
            ]
        c.send(chunks[0])
        assert c.nothing_yet(0.2), "the server reacted to a valid first part"
        c.send(chunks[1])
        if not c.nothing_yet(FAIL_FAST_WAIT):
            fails(c, codes=(1007,))
            return OK
        with contextlib.suppress(OSError):
            c.send(chunks[2])
        fails(c, codes=(1007,))
        return NON_STRICT

    return run


add("6.4.1", _fail_fast([KOSME, b"\xf4\x90\x80\x80", b"edited"], one_frame=False))
add("6.4.2", _fail_fast([KOSME + b"\xf4", b"\x90", b"\x80\x80edited"], one_frame=False))
add("6.4.3", _fail_fast([KOSME, b"\xf4\x90\x80\x80", b"edited"], one_frame=True))
add("6.4.4", _fail_fast([KOSME + b"\xf4", b"\x90", b"edited"], one_frame=True))


def _utf8_sequences() -> list[tuple[str, list[bytes]]]:
    """Markus Kuhn's UTF-8 decoder stress test, grouped as Autobahn's 6.5-6.23."""
    kosme = _KOSME_BYTES
    lonely = []
    for lo, hi in ((0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB), (0xFC, 0xFD)):
        lonely.append(b"".join(bytes([i, 0x20]) for i in range(lo, hi)))
    missing = [
        b"\xc0",
        b"\xe0\x80",
        b"\xf0\x80\x80",
        b"\xf8\x80\x80\x80",
        b"\xfc\x80\x80\x80\x80",
        b"\xdf",
        b"\xef\xbf",
        b"\xf7\xbf\xbf",
        b"\xfb\xbf\xbf\xbf",
        b"\xfd\xbf\xbf\xbf\xbf",
    ]
    noncharacters = [b"\xef\xbf\xbe", b"\xef\xbf\xbf"]
    for z1 in (0xF0, 0xF1, 0xF2, 0xF3, 0xF4):
        for z2 in (0x8F, 0x9F, 0xAF, 0xBF):
            if z1 == 0xF4 and z2 != 0x8F:
                continue  # past U+10FFFF
            for z3 in (0xBE, 0xBF):
                seq = bytes([z1, z2, 0xBF, z3])
                if not (z1 == 0xF0 and z2 == 0x8F):  # overlong
                    noncharacters.append(seq)
    surrogates = [
        b"\xed\xa0\x80",
        b"\xed\xad\xbf",
        b"\xed\xae\x80",
        b"\xed\xaf\xbf",
        b"\xed\xb0\x80",
        b"\xed\xbe\x80",
        b"\xed\xbf\xbf",
    ]
    return [
        (
            "Some valid UTF-8 sequences",
            [b"hello\x24world", b"hello\xc2\xa2world", b"hello\xe2\x82\xacworld", b"hello\xf0\xa4\xad\xa2world", kosme],
        ),
        ("All prefixes of a valid UTF-8 string", [kosme[:i] for i in range(1, len(kosme) + 1)]),
        ("First possible sequence of a certain length", [b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"]),
        ("First possible sequence length 5/6 (invalid)", [b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"]),
        ("Last possible sequence of a certain length", [b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"]),
        (
            "Last possible sequence length 4/5/6 (invalid)",
            [b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf\xbf"],
        ),
        (
            "Other boundary conditions",
            [b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbd", b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80"],
        ),
        (
            "Unexpected continuation bytes",
            [
                b"\x80",
                b"\xbf",
                b"\x80\xbf",
                b"\x80\xbf\x80",
                b"\x80\xbf\x80\xbf",
                b"\x80\xbf\x80\xbf\x80",
                b"\x80\xbf\x80\xbf\x80\xbf",
                bytes(range(0x80, 0xBF)),
            ],
        ),
        ("Lonely start characters", lonely),
        ("Sequences with last continuation byte missing", missing),
        ("Concatenation of incomplete sequences", [b"".join(missing)]),
        ("Impossible bytes", [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"]),
        (
            "Overlong ASCII character",
            [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf", b"\xfc\x80\x80\x80\x80\xaf"],
        ),
        (
            "Maximum overlong sequences",
            [b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf8\x87\xbf\xbf\xbf", b"\xfc\x83\xbf\xbf\xbf\xbf"],
        ),
        (
            "Overlong NUL",
            [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf8\x80\x80\x80\x80", b"\xfc\x80\x80\x80\x80\x80"],
        ),
        ("Single UTF-16 surrogates", surrogates),
        ("Paired UTF-16 surrogates", [a + b for a in surrogates[:4:1] for b in (b"\xed\xb0\x80", b"\xed\xbf\xbf")]),
        ("Non-character code points (valid UTF-8)", noncharacters),
        (
            "Unicode specials",
            [
                b"\xef\xbf\xb9",
                b"\xef\xbf\xba",
                b"\xef\xbf\xbb",
                b"\xef\xbf\xbc",
                b"\xef\xbf\xbd",
                b"\xef\xbf\xbe",
                b"\xef\xbf\xbf",
            ],
        ),
    ]


def _utf8_case(payload: bytes) -> Case:
    def run(c: Client) -> str:
        c.send(frame(OP_TEXT, payload))
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            return fails(c, codes=(1007,))
        return closes_cleanly(c, [text(payload)])

    return run


for _section, (_title, _payloads) in enumerate(_utf8_sequences(), 5):
    for _i, _payload in enumerate(_payloads, 1):
        add(f"6.{_section}.{_i}", _utf8_case(_payload))


# 7 Close handling.
@case("7.1.1")
def _message_then_close(c: Client) -> str:
    c.send(frame(OP_TEXT, b"Hello World!"))
    return closes_cleanly(c, [text("Hello World!")])


@case("7.1.2")
def _two_closes(c: Client) -> str:
    c.send(close_frame(1000))
    return closes_cleanly(c, [])


@case("7.1.3")
def _ping_after_close(c: Client) -> str:
    c.send(close_frame(1000) + frame(OP_PING, b"ping after close"))
    got = c.drain()
    assert got.events == [] and got.close is not None and got.close[0] == 1000 and got.eof
    return OK


@case("7.1.4")
def _text_after_close(c: Client) -> str:
    c.send(close_frame(1000) + frame(OP_TEXT, b"text after close"))
    got = c.drain()
    assert got.events == [] and got.close is not None and got.close[0] == 1000 and got.eof
    return OK


@case("7.1.5")
def _close_between_fragments(c: Client) -> str:
    c.send(frame(OP_TEXT, b"fragment1", fin=False) + close_frame(1000) + frame(OP_CONT, b"fragment2"))
    got = c.drain()
    assert got.events == [] and got.close is not None and got.close[0] == 1000 and got.eof
    return OK


@case("7.1.6")
def _big_message_close_ping(c: Client) -> str:
    # The RFC leaves open whether a message written before the close is delivered in full.
    c.send(frame(OP_TEXT, b"BAsd7&jh23" * 26214) + close_frame(1000) + frame(OP_PING, b"ping"))
    got = c.drain()
    assert got.close is not None and got.close[0] == 1000
    return INFORMATIONAL


add("7.3.1", lambda c: answers_close(c, b"", (None, 1000)))
add("7.3.2", lambda c: answers_close(c, b"\x03", (1002,)))
add("7.3.3", lambda c: answers_close(c, struct.pack("!H", 1000), (1000,)))
add("7.3.4", lambda c: answers_close(c, struct.pack("!H", 1000) + b"Hello World!", (1000,)))
add("7.3.5", lambda c: answers_close(c, struct.pack("!H", 1000) + b"*" * 123, (1000,)))
add("7.3.6", lambda c: answers_close(c, struct.pack("!H", 1000) + b"*" * 124, (1002,)))
add("7.5.1", lambda c: answers_close(c, struct.pack("!H", 1000) + INVALID_UTF8, (1007,)))

for _i, _code in enumerate([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999], 1):
    add(f"7.7.{_i}", lambda c, code=_code: answers_close(c, struct.pack("!H", code), (1000, code)))
for _i, _code in enumerate([0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999], 1):
    add(f"7.9.{_i}", lambda c, code=_code: answers_close(c, struct.pack("!H", code), (1002,)))


def _undefined_code(code: int) -> Case:
    def run(c: Client) -> str:
        # "Actual events are undefined by the spec": any close (we answer 1002) or a drop.
        c.send(close_frame(code))
        got = c.drain()
        assert got.eof
        return INFORMATIONAL

    return run


add("7.13.1", _undefined_code(5000))
add("7.13.2", _undefined_code(65535))


# 9 Limits and performance: big messages, many fragments, small TCP chops, many messages.
MiB = 1 << 20
_SIZES_9 = [64 << 10, 256 << 10, MiB, 4 * MiB, 8 * MiB, 16 * MiB]
_FRAGMENTS_9 = [64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, MiB, 4 * MiB]
_CHOPS_9 = [64, 128, 256, 512, 1024, 2048]
_COUNTS_9 = [0, 16, 64, 256, 1024, 4096]
LONG_CASES: set[str] = set()


def _big_message(op: int, size: int, fragment: int | None = None, chop: int | None = None) -> Case:
    def run(c: Client) -> str:
        data = (b"*" if op == OP_TEXT else b"\xfe") * size
        if fragment is None:
            wire = frame(op, data)
        else:
            pieces = [data[i : i + fragment] for i in range(0, size, fragment)]
            wire = b"".join(frame(op if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1) for i, p in enumerate(pieces))
        c.send(wire, chop=chop)
        got = c.read_frame(timeout=60.0)
        assert got == (op, data), "message not echoed"
        return closes_cleanly(c, [])

    return run


def _many_messages(op: int, size: int) -> Case:
    def run(c: Client) -> str:
        data = (b"*" if op == OP_TEXT else b"\xfe") * size
        # Written from a thread while we read, as Autobahn's client does: the echoes of
        # 1000 messages need not fit in the socket buffers.
        sender = threading.Thread(target=c.send, args=(frame(op, data) * 1000,))
        sender.start()
        for _ in range(1000):
            assert c.read_frame(timeout=60.0) == (op, data)
        sender.join()
        return closes_cleanly(c, [])

    return run


for _sub, _op in ((1, OP_TEXT), (2, OP_BINARY)):
    for _i, _size in enumerate(_SIZES_9, 1):
        add(f"9.{_sub}.{_i}", _big_message(_op, _size))
        if _size > 4 * MiB:
            LONG_CASES.add(f"9.{_sub}.{_i}")
for _sub, _op in ((3, OP_TEXT), (4, OP_BINARY)):
    for _i, _fragment in enumerate(_FRAGMENTS_9, 1):
        add(f"9.{_sub}.{_i}", _big_message(_op, 4 * MiB, fragment=_fragment))
for _sub, _op in ((5, OP_TEXT), (6, OP_BINARY)):
    for _i, _chop in enumerate(_CHOPS_9, 1):
        add(f"9.{_sub}.{_i}", _big_message(_op, MiB, chop=_chop))
for _sub, _op in ((7, OP_TEXT), (8, OP_BINARY)):
    for _i, _count in enumerate(_COUNTS_9, 1):
        add(f"9.{_sub}.{_i}", _many_messages(_op, _count))


# 10 Misc: a 64 KiB message auto-fragmented into 1300-byte frames by the sender.
@case("10.1.1")
def _autofragmented(c: Client) -> str:
    data = b"*" * 65536
    pieces = [data[i : i + 1300] for i in range(0, len(data), 1300)]
    c.send(b"".join(frame(OP_TEXT if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1) for i, p in enumerate(pieces)))
    return closes_cleanly(c, [text(data)])


# Where chopin's verdict is not plain OK, and why.
BEHAVIOUR: dict[str, str] = {
    "7.1.6": INFORMATIONAL,
    "7.13.1": INFORMATIONAL,
    "7.13.2": INFORMATIONAL,
}
# Not run here: none (sections 12 and 13 are in test_conformance_websocket_deflate.py).
NOT_APPLICABLE: dict[str, int] = {}


@pytest.mark.parametrize("case_id", list(CASES))
def test_autobahn_case(server, case_id: str) -> None:
    if case_id in LONG_CASES and not LONG:
        pytest.skip("long variant: set CONFORMANCE_LONG=1")
    c = Client(server.host, server.port)
    try:
        verdict = CASES[case_id](c)
    finally:
        c.close()
    assert verdict == BEHAVIOUR.get(case_id, OK)


def test_case_list_matches_autobahn() -> None:
    sections: dict[str, int] = {}
    for case_id in CASES:
        sections[case_id.split(".")[0]] = sections.get(case_id.split(".")[0], 0) + 1
    # Autobahn's counts for sections 1-7, 9 and 10 (301 cases).
    assert sections == {"1": 16, "2": 11, "3": 7, "4": 10, "5": 20, "6": 145, "7": 37, "9": 54, "10": 1}


SECTION_TITLES = {
    "1": "Framing",
    "2": "Pings/Pongs",
    "3": "Reserved bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 handling",
    "7": "Close handling",
    "9": "Limits/performance",
    "10": "Misc",
}


def readme_rows() -> list[str]:
    """The results table's rows, as the README must show them."""
    rows = []
    for section, title in SECTION_TITLES.items():
        ids = [c for c in CASES if c.split(".")[0] == section]
        verdicts = [BEHAVIOUR.get(c, OK) for c in ids]
        counts = [verdicts.count(v) for v in (OK, NON_STRICT, INFORMATIONAL)]
        cells = [f"{section} {title}", len(ids) + NOT_APPLICABLE.get(section, 0), *counts, 0]
        rows.append("| " + " | ".join(str(c) for c in [*cells, NOT_APPLICABLE.get(section, 0)]) + " |")
    return rows


def test_readme_table_matches_the_verdicts() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [row for row in readme_rows() if row not in readme.splitlines()]
    assert not missing, "\n".join(missing)
