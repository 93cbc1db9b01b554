"""The character sets of HTTP's grammar, one copy for every parser and writer.

RFC 9110 5.6.2 defines ``token = 1*tchar``; the request parser, the response
parser, the WebSocket handshake and the response header encoder all check
tokens against the same set.  Bytes for ``bytes.translate(None, TCHAR)`` (what
is left is not a token), a frozenset of ``str`` for ``issuperset`` checks.
"""

from __future__ import annotations

from typing import Final

__all__ = ["TARGET_CHARS", "TCHAR", "TCHARS"]

# RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
# "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
TCHAR: Final = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TCHARS: Final = frozenset(TCHAR.decode())
# RFC 9112 3.2 / RFC 3986: a request-target is visible ASCII (VCHAR).
TARGET_CHARS: Final = bytes(range(0x21, 0x7F))
