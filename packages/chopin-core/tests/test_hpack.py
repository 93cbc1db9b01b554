"""The stateless HPACK encoder (``_wire/hpack.py``), decoded by the ``hpack`` library, and RFC 7541's examples."""

from __future__ import annotations

import hpack
import pytest
from chopin_core._wire.hpack import STATIC_TABLE, FieldEncoder, encode_integer
from hpack.table import HeaderTable

RESPONSES: list[list[tuple[bytes, bytes]]] = [
    [(b":status", b"200"), (b"content-type", b"text/plain"), (b"content-length", b"13")],
    [(b":status", b"404"), (b"server", b"chopin"), (b"date", b"Sun, 06 Dec 2026 13:00:00 GMT")],
    [(b":status", b"418"), (b"x-custom", b""), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")],
    [(b":status", b"200"), (b"x-long", b"v" * 300), (b"n" * 200, b"value")],
    [(b":status", b"304"), (b"etag", b'"abc"'), (b"cache-control", b"max-age=60")],
]


def test_static_table_is_rfc_7541_appendix_a() -> None:
    assert len(STATIC_TABLE) == 61
    assert tuple(HeaderTable.STATIC_TABLE) == STATIC_TABLE


@pytest.mark.parametrize(
    ("value", "prefix", "expected"),
    [
        (10, 5, b"\x0a"),  # RFC 7541 C.1.1
        (1337, 5, b"\x1f\x9a\x0a"),  # C.1.2
        (42, 8, b"\x2a"),  # C.1.3
        (31, 5, b"\x1f\x00"),  # exactly the prefix's limit
    ],
)
def test_integers_are_rfc_7541_c1(value: int, prefix: int, expected: bytes) -> None:
    assert encode_integer(value, prefix) == expected


def test_blocks_decode_to_the_fields_in_order() -> None:
    encoder = FieldEncoder()
    decoder = hpack.Decoder()
    for _ in range(2):  # the second round comes from the field cache
        for fields in RESPONSES:
            assert decoder.decode(encoder.encode(fields), raw=True) == fields
    assert len(decoder.header_table.dynamic_entries) == 0  # nothing was indexed


def test_static_matches_are_one_byte() -> None:
    assert FieldEncoder().encode([(b":status", b"200")]) == b"\x88"  # RFC 7541 C.6.1's first byte
    assert FieldEncoder().encode([(b":status", b"204"), (b":status", b"500")]) == b"\x89\x8e"


def test_caches_of_two_encoders_do_not_mix() -> None:
    first, second = FieldEncoder(), FieldEncoder()
    a = [(b":status", b"200"), (b"x-a", b"1")]
    b = [(b":status", b"200"), (b"x-a", b"2")]
    for one, other in ((first, second), (second, first)):
        assert hpack.Decoder().decode(one.encode(a), raw=True) == a
        assert hpack.Decoder().decode(other.encode(b), raw=True) == b


def test_table_size_changes_are_announced_once_at_the_start() -> None:
    encoder = FieldEncoder()
    fields = [(b":status", b"200")]
    encoder.header_table_size = 4096  # unchanged: nothing to announce
    assert encoder.encode(fields) == b"\x88"
    encoder.header_table_size = 0
    block = encoder.encode(fields)
    assert block == b"\x20\x88"
    decoder = hpack.Decoder()
    assert decoder.decode(block, raw=True) == fields
    assert decoder.header_table_size == 0
    assert encoder.encode(fields) == b"\x88"
    # Shrunk then grown between two blocks: the smallest size, then the final one (RFC 7541 4.2).
    encoder.header_table_size = 100
    encoder.header_table_size = 8192
    block = encoder.encode(fields)
    assert block == encode_integer(0, 5, 0x20) + encode_integer(8192, 5, 0x20) + b"\x88"
    encoder.header_table_size = 50
    encoder.header_table_size = 4096
    assert encoder.encode(fields) == encode_integer(50, 5, 0x20) + encode_integer(4096, 5, 0x20) + b"\x88"
    assert encoder.header_table_size == 4096


def test_field_cache_is_bounded() -> None:
    encoder = FieldEncoder()
    decoder = hpack.Decoder()
    for n in range(2000):
        fields = [(b":status", b"200"), (b"date", b"%d" % n)]
        assert decoder.decode(encoder.encode(fields), raw=True) == fields
