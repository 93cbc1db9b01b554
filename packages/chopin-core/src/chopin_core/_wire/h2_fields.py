"""The checks RFC 9113 8.2 and 8.3 ask of a received HTTP/2 request's field section, in one pass.

``h2`` can run the same checks (``validate_inbound_headers``) as a chain of seven
generators; this is one loop with C-speed byte scans, the same verdicts (a
request ``h2`` accepts passes here and the reverse), and a message saying which
rule broke where.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

__all__ = ["request_problem", "trailers_problem"]

# RFC 9113 8.2.1: a field name holds no 0x00-0x20, no 0x41-0x5A (upper case), no 0x7F-0xFF,
# and no colon after its first byte.
_NAME_CHARS: Final = bytes(c for c in range(0x21, 0x7F) if not 0x41 <= c <= 0x5A and c != 0x3A)
# RFC 9113 8.2.1: a field value holds no NUL, CR or LF ...
_VALUE_FORBIDDEN: Final = b"\x00\r\n"
# ... and does not start or end with SP or HTAB.
_EDGE_WHITESPACE: Final = (0x20, 0x09)
# RFC 9113 8.2.2: connection-specific fields.
_CONNECTION_SPECIFIC: Final = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"}
)
# RFC 9113 8.3.1 (and RFC 8441 4's :protocol, which only an extended CONNECT may carry).
_REQUEST_PSEUDO: Final = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})


def _field_problem(name: bytes, value: bytes, at: int) -> str | None:
    """RFC 9113 8.2.1-8.2.2 for one field (any kind); None when it is well formed."""
    if not name:
        return f"field {at}: empty name"
    if (name[1:] if name[0] == 0x3A else name).translate(None, _NAME_CHARS):
        return f"field {at}: name {name!r} has a byte RFC 9113 8.2.1 forbids (upper case, space, colon, control)"
    if value:
        if len(value.translate(None, _VALUE_FORBIDDEN)) != len(value):
            return f"field {at} ({name!r}): value holds NUL, CR or LF"
        if value[0] in _EDGE_WHITESPACE or value[-1] in _EDGE_WHITESPACE:
            return f"field {at} ({name!r}): value starts or ends with whitespace"
    if name in _CONNECTION_SPECIFIC:
        return f"field {at}: connection-specific field {name!r}"
    if name == b"te" and value.lower() != b"trailers":
        return f"field {at}: te other than 'trailers'"
    return None


def request_problem(fields: Sequence[tuple[bytes, bytes]]) -> str | None:
    """What makes a request's field section malformed (RFC 9113 8.1.1), or None when it is well formed.

    Args:
        fields: the decoded (name, value) pairs, in order.

    Returns:
        a message naming the rule and the field, or None.
    """
    pseudo: dict[bytes, bytes] = {}
    regular = False
    host: bytes | None = None
    for at, (name, value) in enumerate(fields, 1):
        problem = _field_problem(name, value, at)
        if problem is not None:
            return problem
        if name[0] == 0x3A:
            # RFC 9113 8.3: pseudo-header fields come first, once each, from the request set.
            if regular:
                return f"field {at}: pseudo-header {name!r} after a regular field"
            if name in pseudo:
                return f"field {at}: pseudo-header {name!r} repeated"
            if name not in _REQUEST_PSEUDO:
                return f"field {at}: {name!r} is no request pseudo-header"
            pseudo[name] = value
        else:
            regular = True
            if name == b"host":
                if host is not None:
                    return f"field {at}: a second host"
                host = value
    method = pseudo.get(b":method")
    if method is None:
        return "no :method"
    if method == b"CONNECT" and b":protocol" not in pseudo:
        # RFC 9113 8.5: a plain CONNECT carries no :scheme or :path.
        if b":scheme" in pseudo or b":path" in pseudo:
            return "CONNECT with :scheme or :path"
    else:
        if b":scheme" not in pseudo or b":path" not in pseudo:
            return "no :scheme or no :path"
        if b":protocol" in pseudo and method != b"CONNECT":
            return ":protocol on a request other than CONNECT"
        if not pseudo[b":path"]:
            return "empty :path"
    authority = pseudo.get(b":authority")
    if authority is None and host is None:
        return "neither :authority nor host"
    if authority is not None and host is not None and authority != host:
        return ":authority and host differ"
    return None


def trailers_problem(fields: Sequence[tuple[bytes, bytes]]) -> str | None:
    """What makes a trailer section malformed (RFC 9113 8.1: no pseudo-header fields), or None."""
    for at, (name, value) in enumerate(fields, 1):
        problem = _field_problem(name, value, at)
        if problem is not None:
            return problem
        if name[0] == 0x3A:
            return f"field {at}: pseudo-header {name!r} in trailers"
    return None
