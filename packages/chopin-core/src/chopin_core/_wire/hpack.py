"""HPACK (RFC 7541) on the server's send side: a header-block encoder whose fields' bytes rarely change.

How it works: a field is sent as an index when the static table (RFC 7541 6.1:
one byte for ``:status 200``) or our dynamic table holds it, else as a literal
whose name is a static-table index when the table has the name.  Only fields
whose values repeat from response to response (``server``, ``content-type``,
... :data:`INDEXED_NAMES`) are added to the dynamic table (6.2.1), and only
while they fit: nothing is ever evicted, so once the table stops growing every
field encodes to the same bytes each time, and :class:`FieldEncoder` keeps those
bytes in a bounded dict (cleared when an entry is added, as the indexes shift).
A response's header block then costs a few dict look-ups.  Everything else is a
literal *without indexing* (6.2.2).  Strings are sent raw (Huffman coding is
optional, 5.2).

When the peer's ``SETTINGS_HEADER_TABLE_SIZE`` changes, the next block opens
with dynamic table size updates (6.3) to 0 and then to the new size (4.2: a
size at most the smallest since the last block comes first): the table starts
over empty on both sides.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["INDEXED_NAMES", "STATIC_TABLE", "FieldEncoder", "encode_integer"]

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
# Response fields worth a dynamic-table entry: their values repeat across responses.
INDEXED_NAMES: Final = frozenset(
    {
        b"server",
        b"content-type",
        b"cache-control",
        b"vary",
        b"content-encoding",
        b"accept-ranges",
        b"access-control-allow-origin",
        b"strict-transport-security",
        b"x-content-type-options",
        b"x-frame-options",
        b"referrer-policy",
    }
)
# The dynamic table we use, whatever larger size the peer allows (RFC 7541 4.2 lets the encoder use less).
_MAX_TABLE: Final = 4096
# RFC 7541 4.1: an entry's size is its name's and value's lengths plus 32.
_ENTRY_OVERHEAD: Final = 32


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


def _literal(name: bytes, value: bytes, prefix_bits: int, first: int) -> bytes:
    """RFC 7541 6.2: a literal field, its name a static index when the table has it."""
    name_index = _STATIC_NAME.get(name)
    if name_index is not None:
        head = encode_integer(name_index, prefix_bits, first)
    else:
        head = bytes((first,)) + encode_integer(len(name), 7) + name
    return head + encode_integer(len(value), 7) + value


class FieldEncoder:
    """The HPACK encoder of one HTTP/2 connection (``encode``, and ``header_table_size`` for the peer's setting)."""

    __slots__ = ("_cache", "_dynamic", "_dynamic_size", "_pending", "_table_size")

    def __init__(self) -> None:
        self._cache: dict[tuple[bytes, bytes], bytes] = {}
        self._table_size = 4096  # RFC 9113 6.5.2: SETTINGS_HEADER_TABLE_SIZE's initial value
        self._pending = False  # the size changed: the next block starts the table over
        self._dynamic: dict[tuple[bytes, bytes], int] = {}  # entry -> insertion count (1 = oldest)
        self._dynamic_size = 0

    @property
    def header_table_size(self) -> int:
        """The largest dynamic table the peer's decoder allows."""
        return self._table_size

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        if value != self._table_size:
            self._table_size = value
            self._pending = True

    def encode(self, headers: Iterable[tuple[bytes, bytes]], huffman: bool = True) -> bytes:
        """The header block for ``headers`` (lower-case names, bytes); ``huffman`` is ignored (raw strings)."""
        cache = self._cache
        parts = []
        if self._pending:
            # RFC 7541 4.2/6.3: to 0 (empties the table on both sides), then the new size.
            self._pending = False
            parts.append(b"\x20")
            if self._table_size:
                parts.append(encode_integer(min(self._table_size, _MAX_TABLE), 5, 0x20))
            self._dynamic.clear()
            self._dynamic_size = 0
            cache.clear()
        for field in headers:
            data = cache.get(field)
            if data is None:
                data = self._encode_field(field)
            parts.append(data)
        return b"".join(parts)

    def _encode_field(self, field: tuple[bytes, bytes]) -> bytes:
        """A field's bytes, cached unless it is being added to the dynamic table."""
        name, value = field
        index = _STATIC_FIELD.get(field)
        if index is None:
            count = self._dynamic.get(field)
            if count is not None:
                # RFC 7541 2.3.3: the newest entry is 62, older ones follow.
                index = len(STATIC_TABLE) + 1 + len(self._dynamic) - count
        if index is not None:
            data = encode_integer(index, 7, 0x80)  # 6.1 indexed field
        else:
            size = len(name) + len(value) + _ENTRY_OVERHEAD
            if name in INDEXED_NAMES and self._dynamic_size + size <= min(self._table_size, _MAX_TABLE):
                # 6.2.1, with incremental indexing; never past the table's size, so nothing is
                # evicted.  Every index shifts by one: the cached bytes are stale.
                self._dynamic[field] = len(self._dynamic) + 1
                self._dynamic_size += size
                self._cache.clear()
                return _literal(name, value, 6, 0x40)
            data = _literal(name, value, 4, 0x00)  # 6.2.2 without indexing
        if len(self._cache) >= _CACHE_FIELDS:
            self._cache.clear()
        self._cache[field] = data
        return data
