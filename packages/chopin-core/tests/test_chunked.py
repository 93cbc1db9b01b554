"""The chunked decoder shared by the request parser and the client's response parser."""

from __future__ import annotations

import itertools

import pytest
from chopin_core._wire.chunked import ChunkedDecoder
from hypothesis import given
from hypothesis import strategies as st


class Bad(Exception):
    pass


class TrailerTooLarge(Exception):
    pass


class BodyTooLarge(Exception):
    pass


def decoder(strict: bool = True, max_body: int | None = None, max_trailer: int = 1024) -> ChunkedDecoder:
    return ChunkedDecoder(
        bad=Bad,
        trailer_too_large=TrailerTooLarge,
        max_trailer=max_trailer,
        strict=strict,
        body_too_large=BodyTooLarge,
        max_body=max_body,
    )


def decode_in_pieces(dec: ChunkedDecoder, wire: bytes, cuts: list[int]) -> tuple[bytes, bytes]:
    """Feed ``wire`` split at ``cuts`` the way the parsers do; the body and what followed it."""
    parts: list[bytes] = []
    kept = b""
    bounds = [0, *sorted(set(cuts)), len(wire)]
    for start, stop in itertools.pairwise(bounds):
        buf = kept + wire[start:stop]
        pos = dec.feed(buf, 0, len(buf), parts.append)
        kept = buf[pos:]
        if dec.done:
            return b"".join(parts), kept + wire[stop:]
    raise AssertionError("the body did not end")


def encode(chunks: list[bytes], trailer: bytes = b"") -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c)
    return out + b"0\r\n" + trailer + b"\r\n"


@given(
    chunks=st.lists(st.binary(min_size=1, max_size=40), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    strict=st.booleans(),
)
def test_any_split_gives_the_body_and_leaves_what_follows(chunks: list[bytes], cuts: list[int], strict: bool) -> None:
    wire = encode(chunks, b"X-Sum: 1\r\n") + b"GET / HTTP/1.1\r\n"
    body, rest = decode_in_pieces(decoder(strict), wire, [c for c in cuts if c < len(wire)])
    assert body == b"".join(chunks)
    assert rest == b"GET / HTTP/1.1\r\n"


def test_extensions_and_whitespace_after_the_size_are_ignored() -> None:
    body, rest = decode_in_pieces(decoder(), b"5 ;name=value\r\nhello\r\n0\r\n\r\n", [])
    assert (body, rest) == (b"hello", b"")


@pytest.mark.parametrize(
    "wire",
    [
        b"zz\r\n",  # not hex
        b"\r\n",  # empty size
        b"11111111111111111\r\n",  # over 16 hex digits
        b"5\r\nhelloXY",  # data not followed by CRLF
    ],
)
def test_malformed_framing_is_refused(wire: bytes) -> None:
    with pytest.raises(Bad):
        decoder().feed(wire, 0, len(wire), [].append)


def test_strictness_covers_bare_line_ends_only_when_asked() -> None:
    size_line = b"5\n;x\r\nhello\r\n0\r\n\r\n"
    with pytest.raises(Bad, match="bare CR or LF"):
        decoder(strict=True).feed(size_line, 0, len(size_line), [].append)
    trailer = b"0\r\nA: 1\nB: 2\r\n\r\n"
    with pytest.raises(Bad, match="trailer"):
        decoder(strict=True).feed(trailer, 0, len(trailer), [].append)
    lenient = decoder(strict=False)
    assert lenient.feed(trailer, 0, len(trailer), [].append) == len(trailer)
    assert lenient.done


def test_limits_on_the_body_the_size_line_and_the_trailer() -> None:
    with pytest.raises(BodyTooLarge, match="over 10 bytes"):
        decoder(max_body=10).feed(b"6\r\nabcdef\r\n6\r\n", 0, 15, [].append)
    long_line = b"1" + b" " * 5000
    with pytest.raises(Bad, match="too long"):
        decoder().feed(long_line, 0, len(long_line), [].append)
    trailer = b"0\r\n" + b"X-A: " + b"a" * 2000
    with pytest.raises(TrailerTooLarge):
        decoder(max_trailer=1024).feed(trailer, 0, len(trailer), [].append)
    many = b"0\r\n" + b"X-A: aaaaaaaaaa\r\n" * 100
    with pytest.raises(TrailerTooLarge):
        decoder(max_trailer=1024).feed(many, 0, len(many), [].append)


def test_reset_starts_a_new_body() -> None:
    dec = decoder(max_body=8)
    body, _ = decode_in_pieces(dec, encode([b"abcdef"]), [])
    assert body == b"abcdef" and dec.done
    dec.reset()
    assert not dec.done
    body, _ = decode_in_pieces(dec, encode([b"ghijkl"]), [3])  # the body limit counts per body
    assert body == b"ghijkl"
