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
    for _ in range(2):  # the second round from the field cache and the dynamic table
        for fields in RESPONSES:
            assert decoder.decode(encoder.encode(fields), raw=True) == fields
    # Only fields of INDEXED_NAMES were indexed, once each (newest first).
    assert list(decoder.header_table.dynamic_entries) == [
        (b"cache-control", b"max-age=60"),
        (b"server", b"chopin"),
        (b"content-type", b"text/plain"),
    ]


def test_static_matches_are_one_byte() -> None:
    assert FieldEncoder().encode([(b":status", b"200")]) == b"\x88"  # RFC 7541 C.6.1's first byte
    assert FieldEncoder().encode([(b":status", b"204"), (b":status", b"500")]) == b"\x89\x8e"


def test_repeating_fields_become_one_byte_indexes() -> None:
    encoder = FieldEncoder()
    decoder = hpack.Decoder()
    fields = [(b":status", b"200"), (b"server", b"chopin"), (b"content-type", b"text/plain"), (b"date", b"d")]
    first = encoder.encode(fields)
    assert first[1:2] == bytes((0x40 | 54,))  # RFC 7541 6.2.1: literal with indexing, name index 54 (server)
    assert decoder.decode(first, raw=True) == fields
    second = encoder.encode(fields)
    # content-type was added last (62), server before it (63); date stays a literal (33 without indexing).
    assert second == b"\x88\xbf\xbe" + bytes((0x0F, 33 - 15)) + b"\x01d"
    assert decoder.decode(second, raw=True) == fields
    assert encoder.encode(fields) == second  # stable from then on


def test_the_table_fills_without_eviction_and_stays_in_step() -> None:
    encoder = FieldEncoder()
    decoder = hpack.Decoder()
    for n in range(300):  # distinct values: each wants an entry until 4,096 bytes are used
        fields = [(b":status", b"200"), (b"content-type", b"type/%d" % n), (b"server", b"chopin")]
        assert decoder.decode(encoder.encode(fields), raw=True) == fields
        assert decoder.decode(encoder.encode(fields), raw=True) == fields
    entries = list(decoder.header_table.dynamic_entries)
    assert sum(len(n) + len(v) + 32 for n, v in entries) <= 4096
    assert entries[-1] == (b"content-type", b"type/0")  # the first entry was never evicted
    assert len(entries) < 300


def test_caches_of_two_encoders_do_not_mix() -> None:
    first, second = FieldEncoder(), FieldEncoder()
    a = [(b":status", b"200"), (b"x-a", b"1"), (b"server", b"a")]
    b = [(b":status", b"200"), (b"x-a", b"2"), (b"server", b"b")]
    decoders = {id(first): hpack.Decoder(), id(second): hpack.Decoder()}
    for one, other in ((first, second), (second, first)):
        assert decoders[id(one)].decode(one.encode(a), raw=True) == a
        assert decoders[id(other)].decode(other.encode(b), raw=True) == b


@pytest.mark.parametrize(("size", "updates"), [(0, b"\x20"), (100, b"\x20\x3f\x45"), (65536, b"\x20\x3f\xe1\x1f")])
def test_a_table_size_change_starts_the_table_over(size: int, updates: bytes) -> None:
    encoder = FieldEncoder()
    decoder = hpack.Decoder()
    fields = [(b":status", b"200"), (b"server", b"chopin")]
    decoder.decode(encoder.encode(fields), raw=True)
    encoder.header_table_size = 4096  # unchanged: nothing to announce
    assert encoder.encode(fields) == b"\x88\xbe"
    encoder.header_table_size = size
    decoder.max_allowed_table_size = size
    block = encoder.encode(fields)
    assert block.startswith(updates)  # to 0, then the new size (at most 4,096 used)
    assert decoder.decode(block, raw=True) == fields
    for _ in range(3):
        assert decoder.decode(encoder.encode(fields), raw=True) == fields
    if size == 0 or size < 32 + 6 + 6:
        assert not decoder.header_table.dynamic_entries  # nothing fits: literals only
    assert encoder.header_table_size == size


def test_field_cache_is_bounded() -> None:
    encoder = FieldEncoder()
    decoder = hpack.Decoder()
    for n in range(2000):
        fields = [(b":status", b"200"), (b"date", b"%d" % n)]
        assert decoder.decode(encoder.encode(fields), raw=True) == fields
