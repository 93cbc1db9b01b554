"""Every parser of peer bytes, fuzzed: only its own error family may come out.

A byte sequence from a client (or an upstream) must never raise anything else:
an unexpected exception there once took a whole worker down (``GET /
HTTP/1\\x801``, issue 15).  Each test starts from a well-formed message, made of
named fields, and for every field in turn replaces it (or one of its bytes, or
what surrounds it) with control bytes, non-ASCII bytes and the grammar's own
separators, keeping the other fields well-formed so the bad byte reaches the check
that reads that field.  The message is then fed whole and split at random points.
A seeded generator keeps the runs deterministic and the case counts keep them to
a few seconds in ``./dev test``.
"""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Callable

import pytest
from chopin_core._client_errors import ClientError
from chopin_core._wire.chunked import ChunkedDecoder
from chopin_core._wire.h1_request import CONTINUE, ParserLimits, RequestParser
from chopin_core._wire.h1_response import END, ResponseHead, ResponseLimits, ResponseParser
from chopin_core._wire.ws_frames import (
    BinaryMessage,
    CloseReceived,
    Ping,
    Pong,
    ProtocolFailure,
    TextMessage,
    WebSocketConnection,
)
from chopin_core.errors import BadRequest, BodyTooLarge, HeadTooLarge, ProtocolError
from chopin_core.multipart import MultipartError, parse_multipart
from chopin_core.request import H2Request, Request

CASES = 800  # per field; each case is a few microseconds to a millisecond

# Control bytes, DEL, non-ASCII (UTF-8 continuation and lead bytes), and separators the grammars care about.
NASTY = bytes([*range(0x00, 0x20), 0x7F, 0x80, 0x81, 0xA0, 0xBF, 0xC0, 0xC3, 0xE2, 0xF0, 0xFF]) + b' :;,="/?%.-+0129'


def nasty(rng: random.Random, good: bytes) -> bytes:
    """``good`` spoilt one of five ways: replaced, a byte swapped, bytes around it, emptied, or a long run of digits."""
    how = rng.randrange(5)
    if how == 4:
        # Past Python's 4300-digit limit for int(): a number no parser may hand to int() unchecked.
        return rng.choice([b"1", b"0", b"f"]) * 5000
    if how == 0:
        return bytes(rng.choice(NASTY) for _ in range(rng.randrange(1, 12)))
    if how == 1 and good:
        at = rng.randrange(len(good))
        return good[:at] + bytes([rng.choice(NASTY)]) + good[at + 1 :]
    if how == 2:
        return bytes(rng.choice(NASTY) for _ in range(rng.randrange(3))) + good + bytes([rng.choice(NASTY)])
    return b""


def pieces(rng: random.Random, data: bytes) -> list[bytes]:
    """``data`` whole, or split at up to four random points."""
    if not data or rng.random() < 0.5:
        return [data]
    cuts = sorted({rng.randrange(len(data) + 1) for _ in range(rng.randrange(1, 5))})
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def fields_of(build: Callable[[dict[str, bytes]], bytes], good: dict[str, bytes]) -> list[str]:
    build(good)  # the well-formed message must build
    return list(good)


def cases(good: dict[str, bytes], field: str, seed: int) -> list[tuple[random.Random, dict[str, bytes]]]:
    """``CASES`` variants of ``good`` with ``field`` spoilt (and now and then a second field too)."""
    rng = random.Random(f"{seed}:{field}")
    out = []
    for _ in range(CASES):
        fields = dict(good)
        fields[field] = nasty(rng, good[field])
        if rng.random() < 0.2:
            other = rng.choice(list(good))
            fields[other] = nasty(rng, fields[other])
        out.append((rng, fields))
    return out


# -- the request parser (head, Content-Length and chunked bodies) --------------------------------

REQUEST = {
    "method": b"POST",
    "sp1": b" ",
    "target": b"/a/b?c=d&e",
    "sp2": b" ",
    "version": b"HTTP/1.1",
    "eol": b"\r\n",
    "host_name": b"Host",
    "colon": b": ",
    "host": b"example.com",
    "te_name": b"Transfer-Encoding",
    "te": b"chunked",
    "conn_name": b"Connection",
    "conn": b"keep-alive, upgrade",
    "other_name": b"X-Tag",
    "other": b"v",
    "expect": b"100-continue",
    "upgrade": b"websocket",
    "size": b"5",
    "chunk": b"hello",
    "chunk_end": b"\r\n",
    "trailer": b"X-T: 1\r\n",
}


def build_request(f: dict[str, bytes]) -> bytes:
    eol = f["eol"]
    head = [
        f["method"] + f["sp1"] + f["target"] + f["sp2"] + f["version"],
        f["host_name"] + f["colon"] + f["host"],
        f["te_name"] + b": " + f["te"],
        f["conn_name"] + b": " + f["conn"],
        f["other_name"] + b":" + f["other"],
        b"Expect: " + f["expect"],
        b"Upgrade: " + f["upgrade"],
    ]
    body = f["size"] + b"\r\n" + f["chunk"] + f["chunk_end"] + b"0\r\n" + f["trailer"] + b"\r\n"
    return eol.join(head) + b"\r\n\r\n" + body


# The same request framed by Content-Length instead of chunked coding.
REQUEST_CL = {**{k: v for k, v in REQUEST.items() if k not in ("te", "size", "chunk", "chunk_end", "trailer")}}
REQUEST_CL |= {"te_name": b"Content-Length", "te": b"5", "body": b"hello"}


def build_request_cl(f: dict[str, bytes]) -> bytes:
    fields = {**f, "size": b"", "chunk": b"", "chunk_end": b"", "trailer": b""}
    head = build_request(fields)
    return head[: head.index(b"\r\n\r\n") + 4] + f["body"]


def exercise(req: Request) -> None:
    """What a handler (or the worker) may read off a request: none of it may raise."""
    req.headers.items()
    req.header("content-type")
    req.query_params()
    req.query_list()
    _ = req.decoded_path
    req.accepts_encoding("gzip")
    repr(req)


def feed_requests(parser: RequestParser, chunks: list[bytes]) -> None:
    for chunk in chunks:
        for event in parser.feed(chunk):
            if isinstance(event, ProtocolError):
                assert 400 <= event.status <= 599
                event.message.encode("utf-8", "replace")  # what the worker sends as the body
            elif isinstance(event, Request):
                exercise(event)
            else:
                assert event is CONTINUE
        if parser.paused:
            parser.take_remaining()
            parser.resume()


@pytest.mark.parametrize("field", fields_of(build_request, REQUEST))
def test_request_parser_reports_only_protocol_errors(field: str) -> None:
    limits = ParserLimits(max_head=16 * 1024, max_headers=8, max_uri=64, max_body=64)
    for rng, fields in cases(REQUEST, field, 1):
        wire = build_request(fields)
        # Twice in a row: the second request on a connection takes other paths (head cache, reused decoder).
        feed_requests(RequestParser(limits), pieces(rng, wire + wire))


@pytest.mark.parametrize("field", fields_of(build_request_cl, REQUEST_CL))
def test_request_parser_with_content_length_reports_only_protocol_errors(field: str) -> None:
    limits = ParserLimits(max_head=16 * 1024, max_headers=8, max_uri=64, max_body=64)
    for rng, fields in cases(REQUEST_CL, field, 7):
        wire = build_request_cl(fields)
        feed_requests(RequestParser(limits), pieces(rng, wire + wire))


def test_the_0x80_version_is_answered_505() -> None:
    # The request of issue 15 that killed a worker.
    (event,) = RequestParser().feed(b"GET / HTTP/1\x801\r\nHost: a\r\n\r\n")
    assert isinstance(event, ProtocolError)
    assert event.status == 505
    assert "HTTP/1\\x801" in event.message


def test_header_lines_of_any_bytes_decode() -> None:
    # HTTP/2 header names reach Headers unchecked by our parser (hpack carries any byte).
    rng = random.Random(6)
    for _ in range(CASES):
        lines = [bytes(rng.choice(NASTY) for _ in range(rng.randrange(12))) for _ in range(rng.randrange(4))]
        exercise(H2Request("GET", "/", "/", None, True, True, lines))


@pytest.mark.parametrize("seed", range(4))
def test_request_parser_takes_any_bytes(seed: int) -> None:
    rng = random.Random(seed)
    limits = ParserLimits(max_head=128, max_headers=4, max_uri=32, max_body=32)
    for _ in range(CASES):
        data = bytes(rng.choice(NASTY + b"GET HTTP/1.1\r\n") for _ in range(rng.randrange(60)))
        feed_requests(RequestParser(limits), pieces(rng, data))


# -- the chunked decoder, on its own -------------------------------------------------------------

CHUNKED = {"size": b"1a", "ext": b";name=value", "eol": b"\r\n", "data": b"x" * 26, "last": b"0", "trailer": b"A: b"}


def build_chunked(f: dict[str, bytes]) -> bytes:
    return f["size"] + f["ext"] + f["eol"] + f["data"] + b"\r\n" + f["last"] + b"\r\n" + f["trailer"] + b"\r\n\r\n"


@pytest.mark.parametrize("field", fields_of(build_chunked, CHUNKED))
@pytest.mark.parametrize("strict", [True, False])
def test_chunked_decoder_raises_only_the_errors_it_is_given(field: str, strict: bool) -> None:
    for rng, fields in cases(CHUNKED, field, 2):
        dec = ChunkedDecoder(
            bad=BadRequest,
            trailer_too_large=HeadTooLarge,
            max_trailer=64,
            strict=strict,
            body_too_large=BodyTooLarge,
            max_body=64,
        )
        kept = b""
        try:
            for chunk in pieces(rng, build_chunked(fields)):
                buf = kept + chunk
                pos = dec.feed(buf, 0, len(buf), lambda _data: None)
                kept = buf[pos:]
                if dec.done:
                    break
        except (BadRequest, HeadTooLarge, BodyTooLarge):
            pass


# -- multipart/form-data ------------------------------------------------------------------------

MULTIPART = {
    "boundary": b"XyZ",
    "preamble": b"",
    "crlf": b"\r\n",
    "disposition": b'Content-Disposition: form-data; name="a"; filename="f.txt"',
    "type": b"Content-Type: text/plain",
    "content": b"hello",
    "close": b"--",
}


def build_multipart(f: dict[str, bytes]) -> bytes:
    delimiter = b"--" + f["boundary"]
    return (
        f["preamble"]
        + delimiter
        + f["crlf"]
        + f["disposition"]
        + b"\r\n"
        + f["type"]
        + b"\r\n\r\n"
        + f["content"]
        + b"\r\n"
        + delimiter
        + f["close"]
        + b"\r\n"
    )


@pytest.mark.parametrize("field", fields_of(build_multipart, MULTIPART))
def test_multipart_raises_only_multipart_errors(field: str) -> None:
    for _rng, fields in cases(MULTIPART, field, 3):
        # The Content-Type header reaches the parser as latin-1 text (Headers decodes it so).
        boundary = fields["boundary"].decode("latin-1")
        for content_type in (
            f"multipart/form-data; boundary={boundary}",
            f'multipart/form-data; boundary="{boundary}"',
        ):
            try:
                for part in parse_multipart(build_multipart(fields), content_type, max_parts=4, max_part_header=64):
                    repr(part)
            except MultipartError as exc:
                assert exc.status == 400


# -- WebSocket frames ----------------------------------------------------------------------------

WS_EVENTS = (TextMessage, BinaryMessage, Ping, Pong, CloseReceived, ProtocolFailure)
FRAMES = [
    (0x81, "héllo".encode()),  # text
    (0x82, b"\x00\xff"),  # binary
    (0x01, b"h\xc3"),  # text fragment ending mid-character, then its continuation
    (0x80, b"\xa9!"),
    (0x89, b"ping"),
    (0x8A, b"pong"),
    (0x88, b"\x03\xe8bye"),  # close 1000
]


def build_frame(rng: random.Random, first: int, payload: bytes, spoil: str) -> bytes:
    mask = bytes(rng.randrange(256) for _ in range(4))
    masked_bit = 0x80
    length_form = "natural"
    if spoil == "first":
        first = rng.randrange(256)
    elif spoil == "payload":
        payload = nasty(rng, payload)
        if first == 0x88 and rng.random() < 0.5:  # close codes and reasons, valid or not
            payload = struct.pack("!H", rng.choice([0, 999, 1000, 1004, 1005, 1006, 1012, 1015, 2999, 3000, 5000]))
            payload += nasty(rng, b"reason")
    elif spoil == "mask":
        masked_bit = rng.choice([0, 0x80])
    elif spoil == "length":
        length_form = rng.choice(["16", "64", "lie", "huge"])
    n = len(payload)
    if length_form == "natural" and n < 126:
        header = bytes([first, masked_bit | n])
    elif length_form in ("natural", "16"):
        header = bytes([first, masked_bit | 126]) + struct.pack("!H", n)
    elif length_form == "64":
        header = bytes([first, masked_bit | 127]) + struct.pack("!Q", n)
    elif length_form == "lie":
        header = bytes([first, masked_bit | rng.randrange(126)])
    else:
        header = bytes([first, masked_bit | 127]) + bytes(rng.randrange(256) for _ in range(8))
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if masked_bit else payload
    return header + (mask if masked_bit else b"") + body


@pytest.mark.parametrize("spoil", ["first", "payload", "mask", "length"])
def test_websocket_frames_raise_nothing(spoil: str) -> None:
    rng = random.Random(f"4:{spoil}")
    for _ in range(CASES):
        frames = [
            build_frame(rng, *FRAMES[rng.randrange(len(FRAMES))], spoil if rng.random() < 0.5 else "")
            for _ in range(rng.randrange(1, 5))
        ]
        proto = WebSocketConnection(max_message_size=256)
        for chunk in pieces(rng, b"".join(frames)):
            for event in proto.receive_data(chunk):
                assert isinstance(event, WS_EVENTS), event
                # The worker answers each event with what the protocol requires: that must not raise either.
                proto.reply_to(event)


# -- the response parser (client and reverse proxy) ----------------------------------------------

RESPONSE = {
    "version": b"HTTP/1.1",
    "sp1": b" ",
    "status": b"200",
    "sp2": b" ",
    "reason": b"OK",
    "eol": b"\r\n",
    "name": b"Content-Length",
    "colon": b": ",
    "length": b"3",
    "te_name": b"Transfer-Encoding",
    "te": b"chunked",
    "conn": b"close",
    "body": b"3\r\nabc\r\n0\r\n\r\n",
}


def build_response(f: dict[str, bytes]) -> bytes:
    eol = f["eol"]
    head = [
        f["version"] + f["sp1"] + f["status"] + f["sp2"] + f["reason"],
        f["name"] + f["colon"] + f["length"],
        f["te_name"] + b": " + f["te"],
        b"Connection: " + f["conn"],
    ]
    return eol.join(head) + b"\r\n\r\n" + f["body"]


# The same response framed by Content-Length alone.
RESPONSE_CL = {**RESPONSE, "te_name": b"X-Coding", "body": b"abc"}


@pytest.mark.parametrize(
    ("good", "field"),
    [(RESPONSE, f) for f in RESPONSE] + [(RESPONSE_CL, f) for f in RESPONSE_CL],
    ids=[f"chunked-{f}" for f in RESPONSE] + [f"length-{f}" for f in RESPONSE_CL],
)
def test_response_parser_raises_only_client_errors(good: dict[str, bytes], field: str) -> None:
    for rng, fields in cases(good, field, 5):
        parser = ResponseParser(rng.choice(["GET", "HEAD"]), ResponseLimits(max_head=16 * 1024, max_headers=6))
        try:
            for chunk in pieces(rng, build_response(fields)):
                for event in parser.feed(chunk):
                    assert isinstance(event, (ResponseHead, bytes)) or event is END, event
            parser.feed_eof()
        except ClientError:
            pass
