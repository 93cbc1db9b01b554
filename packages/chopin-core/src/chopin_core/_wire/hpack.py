"""HPACK (RFC 7541) on the server's send side: a header-block encoder that keeps no state.

How it works: every field is either an exact match in the static table (RFC 7541
6.1, indexed: one byte for ``:status 200``) or a literal *without indexing*
(6.2.2) whose name is a static-table index when the table has the name.  Nothing
enters the dynamic table, so a field encodes to the same bytes every time and a
block is the concatenation of its fields' bytes: :class:`FieldEncoder` keeps
them in a bounded dict, and a response's header block costs a few dict
look-ups.  Strings are sent raw (Huffman coding is optional, 5.2).

The only state is what the peer's ``SETTINGS_HEADER_TABLE_SIZE`` asks for: a
change is announced by a dynamic table size update (6.3) at the start of the
next block, as 4.2 requires, the smallest value first when it shrank and grew
in between.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["STATIC_TABLE", "FieldEncoder", "encode_integer"]

# RFC 7541 Appendix A: the static table, index 1 first.
STATIC_TABLE: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
)

# Exact (name, value) matches and first index per name, for the encoder.
_STATIC_FIELD: Final = {field: index for index, field in reversed(list(enumerate(STATIC_TABLE, 1)))}
_STATIC_NAME: Final = {name: index for index, (name, _) in reversed(list(enumerate(STATIC_TABLE, 1)))}
# Fields kept per encoder before its cache starts over (Date changes every second).
_CACHE_FIELDS: Final = 512


def encode_integer(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """RFC 7541 5.1: ``value`` with an N-bit prefix, ``first`` holding the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode_field(name: bytes, value: bytes) -> bytes:
    index = _STATIC_FIELD.get((name, value))
    if index is not None:
        return encode_integer(index, 7, 0x80)  # 6.1 indexed field
    name_index = _STATIC_NAME.get(name)
    if name_index is not None:  # 6.2.2 literal without indexing, indexed name
        head = encode_integer(name_index, 4)
    else:  # 6.2.2 literal without indexing, new name
        head = b"\x00" + encode_integer(len(name), 7) + name
    return head + encode_integer(len(value), 7) + value


class FieldEncoder:
    """A stateless HPACK encoder with the interface ``h2`` gives its ``encoder`` (``encode``, ``header_table_size``)."""

    __slots__ = ("_cache", "_lowest", "_pending", "_table_size")

    def __init__(self) -> None:
        self._cache: dict[tuple[bytes, bytes], bytes] = {}
        self._table_size = 4096  # RFC 9113 6.5.2: SETTINGS_HEADER_TABLE_SIZE's initial value
        self._pending = False
        self._lowest = 4096

    @property
    def header_table_size(self) -> int:
        """The largest dynamic table the peer's decoder allows (we never insert into it)."""
        return self._table_size

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        if value == self._table_size:
            return
        self._lowest = min(self._lowest, value) if self._pending else min(self._table_size, value)
        self._table_size = value
        self._pending = True

    def encode(self, headers: Iterable[tuple[bytes, bytes]], huffman: bool = True) -> bytes:
        """The header block for ``headers`` (lower-case names, bytes); ``huffman`` is ignored (raw strings)."""
        cache = self._cache
        parts = []
        if self._pending:
            # RFC 7541 4.2: the smallest size since the last block, then the final one.
            self._pending = False
            if self._lowest < self._table_size:
                parts.append(encode_integer(self._lowest, 5, 0x20))
            parts.append(encode_integer(self._table_size, 5, 0x20))
        for field in headers:
            data = cache.get(field)
            if data is None:
                if len(cache) >= _CACHE_FIELDS:
                    cache.clear()
                data = cache[field] = _encode_field(field[0], field[1])
            parts.append(data)
        return b"".join(parts)
