"""h2spec's ``generic`` cases (positive paths a server MUST accept), against chopin over a real socket.

The ``http2`` and ``hpack`` groups live in ``test_conformance_http2.py``; this module walks
h2spec's third group, ``generic/*.go``, with its numbering (``generic/3.3/5`` is the fifth
case of h2spec's "3.3 PRIORITY"), its frames and its header-block bytes, on the same raw
client (:class:`test_conformance_http2.Conn`), on a fresh h2c prior-knowledge connection
each, a few again over TLS with ALPN ``h2``.

h2spec passes a case on the first HEADERS frame of the response (or a PING ACK).  Here a
case passes only when the whole response arrives with the right status and body, with no
GOAWAY or RST_STREAM on the way, and the connection still answers a PING afterwards; the
HPACK cases ask ``/headers`` and check the field the representation carried arrived
decoded (name and value).  Requests go to ``/`` (GET, HEAD), ``/echo`` (POST) or
``/headers`` where h2spec's go to ``/``: a handler must exist to check the answer.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import hpack
import pytest
from apps.tls_support import Chain, client_context
from test_conformance_http2 import (
    ACK,
    CONTINUATION,
    DATA,
    ENABLE_PUSH,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADER_TABLE_SIZE,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    MAX_CONCURRENT_STREAMS,
    MAX_FRAME_SIZE,
    PADDED,
    PING,
    PREFACE,
    PRIORITY,
    PRIORITY_FLAG,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    Conn,
    Frame,
    _connect,
    frame,
)

MAX_HEADER_LIST_SIZE = 6
NO_ERROR, CANCEL = 0x0, 0x8


@pytest.fixture(scope="module")
def h2c_server(serve_module):
    return serve_module("apps.tls_app:app")


@pytest.fixture(scope="module")
def tls_server(serve_module, chain: Chain):
    return serve_module("apps.tls_app:app", env={"TLS_CERT": str(chain.chain), "TLS_KEY": str(chain.key)})


@dataclass
class Answer:
    """A response as read off the wire: its decoded header block and its body."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def status(self) -> str:
        return dict(self.headers)[":status"]


class GenericConn(Conn):
    """:class:`Conn` that also decodes the server's header blocks, to check whole responses."""

    def __init__(self, sock: socket.socket, scheme: str) -> None:
        super().__init__(sock)
        self.scheme = scheme
        self.decoder = hpack.Decoder()

    def request(self, method: str = "GET", path: str = "/") -> list[tuple[str, str]]:
        """h2spec's ``CommonHeaders``: the four pseudo-header fields, ``:method`` first."""
        return [(":method", method), (":scheme", self.scheme), (":path", path), (":authority", "127.0.0.1")]

    def answer(self, stream_id: int = 1) -> Answer:
        """Read the whole response on ``stream_id``; GOAWAY or RST_STREAM on the way fail."""
        got = Answer()
        block, block_stream, block_ends = b"", 0, False
        while True:
            f = self.read()
            assert f is not None, f"closed before the response on stream {stream_id} ended; seen {self.seen}"
            assert f.kind not in (GOAWAY, RST_STREAM), f"unexpected {f!r}; seen {self.seen}"
            if f.kind in (HEADERS, CONTINUATION):
                if f.kind == HEADERS:  # END_STREAM is a HEADERS flag, even when CONTINUATION follows
                    block_stream, block_ends = f.stream_id, bool(f.flags & END_STREAM)
                block += _unpad(f) if f.kind == HEADERS else f.payload
                if not f.flags & END_HEADERS:
                    continue
                # Every block goes through the decoder, in order: HPACK state is per connection.
                fields = [(str(n), str(v)) for n, v in self.decoder.decode(block)]
                block = b""
                if block_stream == stream_id:
                    got.headers += fields
                    if block_ends:
                        return got
            elif f.kind == DATA and f.stream_id == stream_id:
                got.body += _unpad(f)
                if f.flags & END_STREAM:
                    return got


def _unpad(f: Frame) -> bytes:
    """A DATA or HEADERS payload without its padding and priority fields (RFC 9113 6.1, 6.2)."""
    payload, pad = f.payload, 0
    if f.flags & PADDED:
        pad, payload = payload[0], payload[1:]
    if f.kind == HEADERS and f.flags & PRIORITY_FLAG:
        payload = payload[5:]
    return payload[: len(payload) - pad]


def priority(dependency: int = 0, weight: int = 255, *, exclusive: bool = False) -> bytes:
    """A PRIORITY payload (RFC 9113 6.3, deprecated but still to be parsed)."""
    return struct.pack("!IB", dependency | (0x80000000 if exclusive else 0), weight)


def ping_ack(c: GenericConn, data: bytes = b"\x00" * 8) -> None:
    """h2spec's ``VerifyPingFrameWithAck``: our PING comes back acknowledged."""
    c.send(frame(PING, 0, 0, data))
    c.expect(PING, lambda f: bool(f.flags & ACK) and f.payload == data)


def hello(c: GenericConn, answer: Answer) -> None:
    """The answer to ``GET /``; then the connection still works."""
    assert answer.status == "200" and answer.body == b"hello", answer
    ping_ack(c)


# -- the cases ------------------------------------------------------------------------------

Case = Callable[[GenericConn], None]
CASES: dict[str, Case] = {}


def case(case_id: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        assert case_id not in CASES
        CASES[case_id] = fn
        return fn

    return register


# 1 Starting HTTP/2: the preface and our SETTINGS are answered by the server's SETTINGS.
@case("generic/1/1")
def _preface(c: GenericConn) -> None:
    c.send(PREFACE + c.settings_frame({INITIAL_WINDOW_SIZE: 65535}))
    first = c.read()
    assert first is not None and first.kind == SETTINGS and not first.flags & ACK, f"got {first!r}"


# 2 Streams and multiplexing.
@case("generic/2/1")
def _priority_on_idle(c: GenericConn) -> None:
    c.handshake()
    c.send(frame(PRIORITY, 0, 1, priority()))
    ping_ack(c)
    # PRIORITY does not open the stream (RFC 9113 5.1): stream 1 is still free for a request.
    c.send(c.headers(1, c.request()))
    hello(c, c.answer())


def _window_update_half_closed(with_priority: bool) -> Case:
    def run(c: GenericConn) -> None:
        c.handshake()
        c.send(c.settings_frame({INITIAL_WINDOW_SIZE: 0}))
        c.expect(SETTINGS, lambda f: bool(f.flags & ACK))
        c.send(c.headers(1, c.request()))
        if with_priority:
            c.send(frame(PRIORITY, 0, 1, priority()))
        c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack("!I", 1)))
        # h2spec waits for a DATA frame; the window allows it one octet, no more.
        first = c.expect(DATA, lambda f: f.stream_id == 1)
        assert first.payload == b"h", f"{first!r} past a 1-octet window"
        c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack("!I", 4)))
        rest = c.answer()
        assert rest.body == b"ello", rest
        ping_ack(c)

    return run


CASES["generic/2/2"] = _window_update_half_closed(with_priority=False)
CASES["generic/2/3"] = _window_update_half_closed(with_priority=True)


@case("generic/2/4")
def _rst_half_closed(c: GenericConn) -> None:
    c.handshake()
    c.send(c.headers(1, c.request()) + frame(RST_STREAM, 0, 1, struct.pack("!I", CANCEL)))
    # h2spec also accepts a closed connection; the stream error is the client's own, so no.
    ping_ack(c)


@case("generic/2/5")
def _priority_on_closed(c: GenericConn) -> None:
    c.handshake()
    c.send(c.headers(1, c.request()))
    hello(c, c.answer())
    c.send(frame(PRIORITY, 0, 1, priority()))
    ping_ack(c)


# 3.1 DATA.
def _post(data: bytes, body: bytes = b"test") -> Case:
    """``POST /echo`` whose DATA frames are ``data``: the body comes back."""

    def run(c: GenericConn) -> None:
        c.handshake()
        c.send(c.headers(1, c.request("POST", "/echo"), end_stream=False) + data)
        answer = c.answer()
        assert answer.status == "200" and answer.body == body, answer
        ping_ack(c)

    return run


CASES["generic/3.1/1"] = _post(frame(DATA, END_STREAM, 1, b"test"))
CASES["generic/3.1/2"] = _post(frame(DATA, 0, 1, b"test") + frame(DATA, END_STREAM, 1, b"test"), b"testtest")
CASES["generic/3.1/3"] = _post(frame(DATA, END_STREAM | PADDED, 1, b"\x05test" + b"\x00" * 5))


# 3.2 HEADERS.
def _get(payload: Callable[[bytes], bytes], flags: int = 0, before: bytes = b"") -> Case:
    """``GET /`` in one HEADERS frame whose payload ``payload`` builds around the block."""

    def run(c: GenericConn) -> None:
        c.handshake()
        block = c.block(c.request())
        c.send(before + frame(HEADERS, END_STREAM | END_HEADERS | flags, 1, payload(block)))
        hello(c, c.answer())

    return run


CASES["generic/3.2/1"] = _get(lambda b: b)
CASES["generic/3.2/2"] = _get(lambda b: b"\x08" + b + b"\x00" * 8, PADDED)
CASES["generic/3.2/3"] = _get(lambda b: priority() + b, PRIORITY_FLAG)

# 3.3 PRIORITY: "priority 1" and "256" are weights 0 and 255 on the wire (weight - 1).
CASES["generic/3.3/1"] = _get(lambda b: b, before=frame(PRIORITY, 0, 1, priority(weight=0)))
CASES["generic/3.3/2"] = _get(lambda b: b, before=frame(PRIORITY, 0, 1, priority(weight=255)))
CASES["generic/3.3/3"] = _get(lambda b: b, before=frame(PRIORITY, 0, 3, priority(1, 0)))
CASES["generic/3.3/4"] = _get(lambda b: b, before=frame(PRIORITY, 0, 1, priority(0, 0, exclusive=True)))
# A PRIORITY for idle stream 3 does not open it, so stream 1 may still start (RFC 9113 5.1.1).
CASES["generic/3.3/5"] = _get(lambda b: b, before=frame(PRIORITY, 0, 3, priority()))


# 3.4 RST_STREAM on an open stream.
@case("generic/3.4/1")
def _rst_open(c: GenericConn) -> None:
    c.handshake()
    c.send(c.headers(1, c.request(), end_stream=False) + frame(RST_STREAM, 0, 1, struct.pack("!I", CANCEL)))
    ping_ack(c)


# 3.5 SETTINGS with every parameter h2spec sets, acknowledged.
@case("generic/3.5/1")
def _settings(c: GenericConn) -> None:
    c.handshake()
    c.send(
        c.settings_frame(
            {
                HEADER_TABLE_SIZE: 4096,
                ENABLE_PUSH: 1,
                MAX_CONCURRENT_STREAMS: 100,
                INITIAL_WINDOW_SIZE: 65535,
                MAX_FRAME_SIZE: 16384,
                MAX_HEADER_LIST_SIZE: 100,
            }
        )
    )
    c.expect(SETTINGS, lambda f: bool(f.flags & ACK) and f.payload == b"")


# 3.7 PING.
@case("generic/3.7/1")
def _ping(c: GenericConn) -> None:
    c.handshake()
    ping_ack(c, b"h2spec\x00\x00")


# 3.8 GOAWAY from the client, then a PING: h2spec wants the PING answered or the
# connection closed.  chopin closes (h2 keeps nothing open after a GOAWAY, python-hyper/h2
# #1181), with GOAWAY NO_ERROR at most: the PING is no error (RFC 9113 6.8).  Both frames
# go in one write, the case that used to draw GOAWAY PROTOCOL_ERROR.
@case("generic/3.8/1")
def _goaway(c: GenericConn) -> None:
    c.handshake()
    c.send(frame(GOAWAY, 0, 0, struct.pack("!II", 0, NO_ERROR) + b"h2spec") + frame(PING, 0, 0, b"h2spec\x00\x00"))
    while (f := c.read()) is not None:
        assert f.kind != GOAWAY or f.error_code == NO_ERROR, f"{f!r} after the client's GOAWAY"
        if f.kind == PING and f.flags & ACK:
            assert f.payload == b"h2spec\x00\x00"
            return


# 3.9 WINDOW_UPDATE.
@case("generic/3.9/1")
def _window_update_connection(c: GenericConn) -> None:
    c.handshake()
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack("!I", 1)))
    ping_ack(c)


@case("generic/3.9/2")
def _window_update_stream(c: GenericConn) -> None:
    c.handshake()
    # The stream may be closed by the time the update arrives: still no error (RFC 9113 6.9).
    c.send(c.headers(1, c.request()) + frame(WINDOW_UPDATE, 0, 1, struct.pack("!I", 1)))
    hello(c, c.answer())


# 3.10 CONTINUATION: the block cut after 5 (and 10) octets.
def _continued(cuts: list[int]) -> Case:
    def run(c: GenericConn) -> None:
        c.handshake()
        block = c.block(c.request())
        pieces = [block[a:b] for a, b in zip([0, *cuts], [*cuts, len(block)], strict=True)]
        wire = frame(HEADERS, END_STREAM, 1, pieces[0])
        for i, piece in enumerate(pieces[1:], 2):
            wire += frame(CONTINUATION, END_HEADERS if i == len(pieces) else 0, 1, piece)
        c.send(wire)
        hello(c, c.answer())

    return run


CASES["generic/3.10/1"] = _continued([5])
CASES["generic/3.10/2"] = _continued([5, 10])


# 4 HTTP message exchanges.
@case("generic/4/1")
def _get_request(c: GenericConn) -> None:
    c.handshake()
    c.send(c.headers(1, c.request()))
    hello(c, c.answer())


@case("generic/4/2")
def _head_request(c: GenericConn) -> None:
    c.handshake()
    c.send(c.headers(1, c.request("HEAD")))
    answer = c.answer()
    assert answer.status == "200" and answer.body == b"", answer  # RFC 9110 9.3.2: no content
    ping_ack(c)


CASES["generic/4/3"] = _post(frame(DATA, END_STREAM, 1, b"test"))


@case("generic/4/4")
def _post_with_trailers(c: GenericConn) -> None:
    c.handshake()
    c.send(c.headers(1, [*c.request("POST", "/echo"), ("trailer", "x-test")], end_stream=False))
    c.send(frame(DATA, 0, 1, b"test") + c.headers(1, [("x-test", "ok")]))
    answer = c.answer()
    assert answer.status == "200" and answer.body == b"test", answer
    ping_ack(c)


# 5 HPACK: h2spec's bytes for each representation, after the common fields, on GET /headers.
# What each carries (checked against the hpack library below); h2spec's names for 5/2
# and 5/10-5/13 do not all match their bytes (5/12 and 5/13 are the same bytes), and
# the bytes are what it sends.
HPACK_REPRESENTATIONS: list[tuple[bytes, tuple[str, str]]] = [
    (b"\xba", ("user-agent", "")),
    (b"\x40\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4", ("user-agent", "h2spec")),
    (b"\x40\x0auser-agent\x06h2spec", ("user-agent", "h2spec")),
    (b"\x40\x06x-test\x06h2spec", ("x-test", "h2spec")),
    (b"\x40\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4", ("x-test", "h2spec")),
    (b"\x00\x0auser-agent\x06h2spec", ("user-agent", "h2spec")),
    (b"\x00\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4", ("user-agent", "h2spec")),
    (b"\x00\x06x-test\x06h2spec", ("x-test", "h2spec")),
    (b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4", ("x-test", "h2spec")),
    (b"\x10\x0auser-agent\x06h2spec", ("user-agent", "h2spec")),
    (b"\x10\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4", ("user-agent", "h2spec")),
    (b"\x10\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4", ("x-test", "h2spec")),
    (b"\x10\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4", ("x-test", "h2spec")),
]


def _fields_seen(c: GenericConn, stream_id: int = 1) -> list[tuple[str, str]]:
    """The header fields ``/headers`` says it received on ``stream_id``."""
    answer = c.answer(stream_id)
    assert answer.status == "200", answer
    return [(n, v) for n, v in json.loads(answer.body)]


def _representation(rep: bytes, expected: tuple[str, str]) -> Case:
    def run(c: GenericConn) -> None:
        c.handshake()
        block = c.block(c.request("GET", "/headers")) + rep
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
        assert expected in _fields_seen(c), f"{expected} not among the decoded fields"
        # The dynamic table must now hold what the representation put there and nothing
        # else: a second request made of every dynamic entry, oldest first, is decoded
        # as a mirror decoder (the hpack library's) decodes it.
        mirror = hpack.Decoder()
        mirror.decode(block)
        n = len(mirror.header_table.dynamic_entries)
        scheme = b"\x86" if c.scheme == "http" else b"\x87"
        again = b"\x82" + scheme + bytes(0x80 | (61 + n - i) for i in range(n))
        wanted = [(str(k), str(v)) for k, v in mirror.decode(again) if not str(k).startswith(":")]
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, again))
        seen = _fields_seen(c, 3)
        assert all(f in seen for f in wanted), f"second request: {seen}, expected {wanted} among them"
        assert (expected in seen) == (expected in wanted), f"second request: {seen}"
        ping_ack(c)

    return run


for _i, (_rep, _expected) in enumerate(HPACK_REPRESENTATIONS, 1):
    CASES[f"generic/5/{_i}"] = _representation(_rep, _expected)


@case("generic/5/14")
def _table_size_update(c: GenericConn) -> None:
    c.handshake()
    c.encoder.header_table_size = 128  # the next block starts with a size update to 128
    block = c.block(c.request("GET", "/headers"))
    assert block[0] & 0xE0 == 0x20, "the encoder did not emit a size update"
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
    _fields_seen(c)
    ping_ack(c)


@case("generic/5/15")
def _two_table_size_updates(c: GenericConn) -> None:
    c.handshake()
    updates = b"\x3f\x61\x3f\xe1\x1f"  # 128, then 4096 (RFC 7541 4.2: at most two, smallest first)
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, updates + c.block(c.request("GET", "/headers"))))
    _fields_seen(c)
    ping_ack(c)


# Where chopin answers otherwise than h2spec expects, and why: none.
DIFFERENT: dict[str, str] = {}

# Over TLS with ALPN h2 too (scheme https): a request of each kind.
TLS_CASES = ["generic/1/1", "generic/2/2", "generic/3.10/2", "generic/4/4", "generic/5/5"]


@pytest.mark.parametrize("case_id", list(CASES))
def test_h2spec_generic_case(h2c_server, case_id: str) -> None:
    c = GenericConn(_connect(h2c_server.host, h2c_server.port), "http")
    try:
        CASES[case_id](c)
    finally:
        c.sock.close()


@pytest.mark.parametrize("case_id", TLS_CASES)
def test_h2spec_generic_case_over_tls(tls_server, chain: Chain, case_id: str) -> None:
    c = GenericConn(_connect(tls_server.host, tls_server.port, client_context(chain.root)), "https")
    try:
        CASES[case_id](c)
    finally:
        c.sock.close()


def test_hpack_representations_carry_the_named_fields() -> None:
    """Each h2spec representation decodes (with the hpack library) to the field we check for."""
    for rep, expected in HPACK_REPRESENTATIONS:
        assert hpack.Decoder().decode(rep) == [expected], rep


def test_case_list_matches_h2spec() -> None:
    groups: dict[str, int] = {}
    for case_id in CASES:
        group = case_id.rsplit("/", 1)[0]
        groups[group] = groups.get(group, 0) + 1
    # h2spec's generic/*.go: 44 cases.
    assert groups == {
        "generic/1": 1,
        "generic/2": 5,
        "generic/3.1": 3,
        "generic/3.2": 3,
        "generic/3.3": 5,
        "generic/3.4": 1,
        "generic/3.5": 1,
        "generic/3.7": 1,
        "generic/3.8": 1,
        "generic/3.9": 2,
        "generic/3.10": 2,
        "generic/4": 4,
        "generic/5": 15,
    }


SECTION_TITLES = {
    "generic/1": "Starting HTTP/2",
    "generic/2": "Streams and multiplexing",
    "generic/3": "Frame definitions",
    "generic/4": "HTTP message exchanges",
    "generic/5": "HPACK",
}


def readme_rows() -> list[str]:
    """The results table's rows for the generic group, as the README must show them."""
    rows = []
    for section, title in SECTION_TITLES.items():
        ids = [c for c in CASES if "/".join(c.split("/")[:2]).split(".")[0] == section]
        differs = sum(1 for c in ids if c in DIFFERENT)
        cells = [f"{section} {title}", len(ids), len(ids) - differs, differs, 0]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return rows


def test_readme_table_matches_the_cases() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
    missing = [row for row in readme_rows() if row not in readme]
    assert not missing, "\n".join(missing)
