"""The HTTP Garden's transducer (proxy) bug classes, against chopin's reverse proxy over sockets.

The Garden (narfindustries/http-garden, ``TROPHIES.md``, "Transducer Bugs") lists what
proxies got wrong in what they accept and forward: numbered 1-25 (the list has no 8), each
with a payload.  ``test_conformance_http11.py`` sends the Garden's *server* classes to
chopin alone and through the proxy in front of a chopin upstream; this module sends each
*transducer* payload to the proxy (``apps.proxy_app``, prefix ``/api``) in front of a raw
upstream that records the bytes it receives and parses them with h11.  A class passes
when the proxy either

* refuses the stream (4xx, then closes) and the upstream receives nothing at all, or
* forwards exactly the requests its own parser read (method, path, body) as bytes a
  strict parser reads the same way: CRLF line ends only, no control characters, one
  framing header at most, nothing after the last request.

Payloads are the Garden's, with ``/api`` in front of the path and a ``Host`` field where
the payload had none (else every one would be refused for that alone).  ``ACCEPTED``
adds, for classes whose trick has a legal spelling chopin accepts, that spelling, to show
what the proxy forwards for it.  The Garden's two HTTP/2 downgrade bugs ("Bonus Bonus")
run too, over h2c prior knowledge.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h11
import pytest
from test_conformance_http2 import END_HEADERS, END_STREAM, HEADERS, PROTOCOL_ERROR, _connect, frame
from test_conformance_http2_generic import GenericConn
from test_conformance_http11 import ours

PREFIX = b"/api"

# TROPHIES.md, Transducer Bugs: number -> payload ("{P}" is the prefix).
POST = b"POST {P}/ HTTP/1.1\r\nHost: a\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"
TRANSDUCER: dict[str, bytes] = {
    "1 0x Content-Length": b"POST {P}/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\nZ",
    "2 invalid chunk sizes": CHUNKED + b"Z\r\nZZ\r\nZZZ\r\n\r\n",
    "3 CR before chunk-ext": (
        b"POST {P}/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\r;a\r\n02\r\n41\r\n0\r\n\r\n"
        b"GET /bad_path/pwned HTTP/1.1\r\nHost: a\r\nContent-Length: 430\r\n\r\n0\r\n\r\n"
        b"GET {P}/ HTTP/1.1\r\nHost: a\r\n\r\n"
    ),
    "4 invalid chunk, body dropped": b"POST {P}/  HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r0\n",
    "5 empty Content-Length": b"GET {P}/ HTTP/1.1\r\nhost: whatever\r\ncontent-length: \r\n\r\n",
    "6 bad byte in a name": b"GET {P}/ HTTP/1.1\r\nHost: fanout\r\nHeader\x85: value\r\n\r\n",
    "7 chunk size prefix": CHUNKED + b"1these-bytes-never-get-validated\r\nZ\r\n0\r\n\r\n",
    "9 TE ,chunked": b"POST {P}/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n",
    "10 CR in a value": b"GET {P}/ HTTP/1.1\r\nHost: a\r\nInvalid-Header: this\rvalue\ris\rinvalid\r\n\r\n",
    "11 empty CL first": (
        b"GET {P}/ HTTP/1.1\r\nhost: whatever\r\ncontent-length: \r\ncontent-length: 59\r\n\r\n"
        b"POST /evil HTTP/1.1\r\nhost: whatever\r\ncontent-length: 34\r\n\r\nGET / HTTP/1.1\r\nhost: whatever\r\n\r\n"
    ),
    "12 NUL in a value": b"GET {P}/ HTTP/1.1\r\nHost: google.com\x00.kallus.org\r\n\r\n",
    "13 bare LF after chunk": (
        b"GET {P}/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\n0\r\n\r\n"
    ),
    "14 line without colon": b"GET {P}/ HTTP/1.1\r\nHost: whatever\r\nTe\nst: test\r\nConnection: close\r\n\r\n",
    "15 TE ,chunked and CL": (
        b"GET {P}/ HTTP/1.1\r\nHost: whatever\r\nTransfer-Encoding: ,chunked\r\nContent-Length: 5\r\n"
        b"Connection: close\r\n\r\n0r\n\r\n"
    ),
    "16 bare LF line ends": b"GET {P}/ HTTP/1.1\nHost: whatever\nConnection: close\n\n",
    "17 CRLF before last chunk": CHUNKED + b"17\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n\r\n\r\n0\r\n\r\n",
    "18 TE ,chunked and CL": (
        b"GET {P}/ HTTP/1.1\r\nHost: whatever\r\nTransfer-Encoding: ,chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
    ),
    "19 chunk size -0x0": b"POST {P}/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-0x0\r\n\r\n",
    "20 NUL line joined": b"GET {P}/ HTTP/1.1\r\nHost: a\r\na:b\r\nc\x00\r\n\r\n",
    "21 GET body dropped": b"GET {P}/ HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n1234567890",
    "22 two CLs, last wins": (
        POST + b"Content-Length: 0\r\nContent-Length: 31\r\n\r\nGET /evil HTTP/1.1\r\nHost: a\r\n\r\n"
    ),
    "23 CL and TE": POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "24 spaces before chunk size": CHUNKED + b"           0\r\n\r\n",
    "25 TE chunked twice": POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}

# Legal spellings of some classes' tricks, which chopin accepts: what does the proxy forward?
ACCEPTED: dict[str, bytes] = {
    "7/24 chunk-ext and BWS": (
        b"POST {P}/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4 ;a=b\r\nabcd\r\n0\r\n\r\n"
    ),
    "17 trailer fields": (
        b"POST {P}/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\nX-T: 1\r\n"
        b"Content-Length: 60\r\n\r\n"
    ),
    "22 same CL twice": b"POST {P}/ HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
    "22 CL list 4, 4": b"POST {P}/ HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd",
    "12 obs-text in a value": b"GET {P}/ HTTP/1.1\r\nHost: a\r\nX-A: caf\xe9\r\n\r\n",
    "16 empty lines first": b"\r\n\r\nGET {P}/ HTTP/1.1\r\nHost: a\r\n\r\n",
}


# -- the upstream that records what the proxy forwards ----------------------------------------


@dataclass
class Forwarded:
    """One request as the upstream received it: its raw head, and what h11 read."""

    head: bytes
    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""


@dataclass
class CaptureUpstream:
    """A raw HTTP/1.1 upstream in a thread of the test process: logs what arrives, answers ``ok``."""

    sock: socket.socket
    requests: list[Forwarded] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    received: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def take(self) -> tuple[list[Forwarded], list[str], int]:
        """What arrived since the last call: requests, parse errors, bytes; then forget it."""
        with self.lock:
            got = (self.requests, self.errors, self.received)
            self.requests, self.errors, self.received = [], [], 0
            return got

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        parser = h11.Connection(h11.SERVER)
        raw = b""  # this connection's bytes, to cut each request's head out of
        consumed = 0  # of raw, what h11 has parsed
        current: Forwarded | None = None
        with conn:
            while True:
                try:
                    event = parser.next_event()
                except h11.RemoteProtocolError as exc:
                    with self.lock:
                        self.errors.append(f"{exc}: {raw[consumed:]!r}")
                    return
                if event is h11.NEED_DATA:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    with self.lock:
                        self.received += len(data)
                    raw += data
                    parser.receive_data(data)
                    continue
                end = len(raw) - len(parser.trailing_data[0])
                if isinstance(event, h11.Request):
                    head = raw[consumed:end]
                    current = Forwarded(head, event.method.decode(), event.target.decode(), list(event.headers))
                elif isinstance(event, h11.Data) and current is not None:
                    current.body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage) and current is not None:
                    with self.lock:
                        self.requests.append(current)
                    current = None
                    conn.sendall(
                        parser.send(h11.Response(status_code=200, headers=[("Content-Length", "2")]))
                        + parser.send(h11.Data(data=b"ok"))
                        + parser.send(h11.EndOfMessage())
                    )
                    if parser.our_state is h11.MUST_CLOSE:
                        return
                    parser.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    return
                consumed = end


@pytest.fixture(scope="module")
def capture() -> Iterator[CaptureUpstream]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    upstream = CaptureUpstream(sock)
    thread = threading.Thread(target=upstream.serve, daemon=True)
    thread.start()
    yield upstream
    sock.close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def proxy(serve_module, capture: CaptureUpstream):
    return serve_module("apps.proxy_app:app", env={"PROXY_UPSTREAM": capture.url})


# -- verdicts -----------------------------------------------------------------------------


def well_formed(head: bytes) -> None:
    """A forwarded head a strict parser reads one way only (RFC 9112 2.2, 5, 6.1, 6.3)."""
    assert head.endswith(b"\r\n\r\n"), head
    lines = head[:-4].split(b"\r\n")
    assert not any(b"\r" in line or b"\n" in line for line in lines), f"bare CR or LF: {head!r}"
    assert not any((b < 0x20 and b != 0x09) or b == 0x7F for b in head[:-4].replace(b"\r\n", b"")), head
    assert not any(line[:1] in (b" ", b"\t") for line in lines[1:]), f"obs-fold: {head!r}"
    names = [line.split(b":", 1)[0].lower() for line in lines[1:]]
    assert names.count(b"content-length") <= 1, f"Content-Length more than once: {head!r}"
    assert names.count(b"transfer-encoding") <= 1, f"Transfer-Encoding more than once: {head!r}"
    assert not (b"content-length" in names and b"transfer-encoding" in names), f"both framings: {head!r}"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"transfer-encoding":
            assert value.strip() == b"chunked", f"Transfer-Encoding {value!r} forwarded"
        if name.lower() == b"content-length":
            assert value.strip().isdigit(), f"Content-Length {value!r} forwarded"


def check(proxy, capture: CaptureUpstream, connect, payload: bytes) -> list[Forwarded]:
    """Send ``payload`` to the proxy; what reached the upstream, once checked (nothing: refused)."""
    data = payload.replace(b"{P}", PREFIX)
    parsed = ours([data])
    capture.take()
    conn = connect(proxy)
    conn.send(data)
    for method, target, _body in parsed.requests:
        resp = conn.read_response(timeout=10.0)
        expected = 200 if target.startswith(PREFIX.decode() + "/") else 404
        assert resp.status == expected, f"{method} {target}: {resp.status} {resp.body!r}"
    if parsed.end == "error":
        resp = conn.read_response(timeout=10.0)
        assert 400 <= resp.status < 500, resp
        conn.assert_closed_by_server(timeout=10.0)
    conn.close()
    forwarded, errors, _ = capture.take()
    assert not errors, f"the upstream could not parse what it got: {errors}"
    wanted = [(m, t.removeprefix(PREFIX.decode()), b) for m, t, b in parsed.requests if t.startswith(PREFIX.decode())]
    assert [(f.method, f.target, f.body) for f in forwarded] == wanted
    for f in forwarded:
        well_formed(f.head)
    return forwarded


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\nHost: a\n\n",  # 16: bare LF kept
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",  # 10: CR in a value
        b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",  # 12: NUL in a value
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",  # obs-fold kept
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n",  # 9, 18
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 31\r\n\r\n",  # 22
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",  # 23
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",  # 1
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",  # 25
    ],
)
def test_well_formed_refuses_what_the_garden_saw_forwarded(head: bytes) -> None:
    with pytest.raises(AssertionError):
        well_formed(head)


# Each class's verdict, pinned: refused by the proxy's parser, or forwarded well-formed.
FORWARDED = {"9 TE ,chunked", "21 GET body dropped"}


@pytest.mark.parametrize("name", list(TRANSDUCER))
def test_transducer_class(proxy, capture: CaptureUpstream, connect, name: str) -> None:
    forwarded = check(proxy, capture, connect, TRANSDUCER[name])
    assert bool(forwarded) == (name in FORWARDED)


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_accepted_spelling_is_forwarded_normalised(proxy, capture: CaptureUpstream, connect, name: str) -> None:
    assert check(proxy, capture, connect, ACCEPTED[name])


def test_forwarded_framing_is_one_content_length(proxy, capture: CaptureUpstream, connect) -> None:
    """Classes 9, 17, 22 and 24: chunked or doubled framing reaches the upstream as one length."""
    for payload, length in [
        (TRANSDUCER["9 TE ,chunked"], b"0"),
        (ACCEPTED["7/24 chunk-ext and BWS"], b"4"),
        (ACCEPTED["17 trailer fields"], b"4"),
        (ACCEPTED["22 CL list 4, 4"], b"4"),
    ]:
        (f,) = check(proxy, capture, connect, payload)
        fields = {n.lower(): v for n, v in f.headers}
        # RFC 9112 6.3: a request with neither field has no content, so 0 may go unsaid.
        assert fields.get(b"content-length", b"0") == length and b"transfer-encoding" not in fields, f.head
        assert b"x-t" not in fields  # trailer fields are not promoted to header fields


# -- the Garden's HTTP/2 downgrade bugs ("Bonus Bonus Bugs") ------------------------------------


def _literal(name: bytes, value: bytes) -> bytes:
    """A literal field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def _h2_request(extra: bytes) -> bytes:
    return (
        _literal(b":authority", b"localhost")
        + _literal(b":path", PREFIX + b"/")
        + _literal(b":method", b"GET")
        + _literal(b":scheme", b"http")
        + extra
    )


DOWNGRADE = {
    # 1: whitespace around a value ("\ta\t") is not stripped going to HTTP/1.1.
    "1 whitespace around a value": _literal(b"test1", b"\ta\t"),
    # 2: an empty field name is kept going to HTTP/1.1, which no HTTP/1.1 parser accepts.
    "2 empty field name": _literal(b"", b""),
}


@pytest.mark.parametrize("name", list(DOWNGRADE))
def test_h2_downgrade_class(proxy, capture: CaptureUpstream, name: str) -> None:
    # Refused before anything goes upstream: field names and values are checked (RFC 9113
    # 8.2.1) and a malformed field is answered with RST_STREAM PROTOCOL_ERROR, the stream
    # error RFC 9113 8.1.1 asks for (the h2spec module accepts a connection error too).
    capture.take()
    c = GenericConn(_connect(proxy.host, proxy.port), "http")
    try:
        c.handshake()
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, _h2_request(DOWNGRADE[name])))
        c.stream_error(PROTOCOL_ERROR)
    finally:
        c.sock.close()
    assert capture.take() == ([], [], 0), "something reached the upstream"


def readme_rows() -> list[str]:
    """The results table's rows for the proxy classes, as the README must show them."""
    n, forwarded = len(TRANSDUCER), len(FORWARDED)
    return [
        f"| transducer classes 1-25 (no 8) | {n} | {n - forwarded} | {forwarded} | 0 |",
        f"| legal spellings of their tricks | {len(ACCEPTED)} | 0 | {len(ACCEPTED)} | 0 |",
        f"| HTTP/2 downgrade (Bonus Bonus) | {len(DOWNGRADE)} | {len(DOWNGRADE)} | 0 | 0 |",
    ]


def test_readme_table_matches_the_cases() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
    missing = [row for row in readme_rows() if row not in readme]
    assert not missing, "\n".join(missing)
