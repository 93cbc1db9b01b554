"""``multipart/form-data`` bodies (RFC 7578, RFC 2046 5.1).

:func:`parse_multipart` walks the body once and yields each :class:`Part` with
its ``body`` as a memoryview into the request body: no part is copied.  Limits on
the number of parts and on each part's header block bound the work a hostile
body can cause; a malformed body raises :class:`MultipartError` (a 400).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from .errors import ExtractError

__all__ = ["MultipartError", "Part", "boundary_of", "parse_multipart"]

MAX_PARTS: Final = 1000
MAX_PART_HEADER: Final = 8 * 1024
# RFC 2046 5.1.1: a boundary is 1 to 70 characters.
_MAX_BOUNDARY: Final = 70


class MultipartError(ExtractError):
    """A ``multipart/form-data`` body that cannot be read (answered with 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"multipart body: {message}", 400)


class Part:
    """One part of a form.

    Attributes:
        name: the form field name (``Content-Disposition: form-data; name=...``).
        filename: the file name a client sent, if any (never trust it as a path).
        content_type: the part's ``Content-Type`` (``text/plain`` when absent, RFC 7578 4.4).
        headers: the part's header fields as ``(lower-case name, value)`` pairs.
        body: the content, a memoryview into the request body.
    """

    __slots__ = ("body", "content_type", "filename", "headers", "name")

    def __init__(
        self,
        name: str | None,
        filename: str | None,
        content_type: str,
        headers: list[tuple[str, str]],
        body: memoryview,
    ) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.headers = headers
        self.body = body

    def text(self, encoding: str = "utf-8") -> str:
        """The body decoded as text."""
        return bytes(self.body).decode(encoding)

    def __repr__(self) -> str:
        return f"<Part name={self.name!r} filename={self.filename!r} {len(self.body)} bytes>"


def _params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type; a=b; c="d; e"`` into the first token and its parameters."""
    params: dict[str, str] = {}
    head, _, rest = value.partition(";")
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            chars = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            params[key] = "".join(chars)
            i += 1
        else:
            end = rest.find(";", i)
            end = n if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return head.strip().lower(), params


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type.

    Raises:
        MultipartError: not multipart/form-data, or no valid boundary.
    """
    if not content_type:
        raise MultipartError("no Content-Type, expected multipart/form-data")
    media, params = _params(content_type)
    if media != "multipart/form-data":
        raise MultipartError(f"Content-Type is {media!r}, expected multipart/form-data")
    boundary = params.get("boundary", "")
    if not 1 <= len(boundary) <= _MAX_BOUNDARY or not boundary.isascii():
        raise MultipartError("Content-Type has no valid boundary parameter")
    return boundary.encode("ascii")


def parse_multipart(
    body: bytes,
    content_type: str | None,
    *,
    max_parts: int = MAX_PARTS,
    max_part_header: int = MAX_PART_HEADER,
) -> Iterator[Part]:
    """Yield the parts of a ``multipart/form-data`` body, in order.

    Raises:
        MultipartError: the body is malformed or passes a limit.
    """
    delimiter = b"--" + boundary_of(content_type)
    view = memoryview(body)
    start = body.find(delimiter)
    if start < 0 or (start > 0 and body[start - 2 : start] != b"\r\n"):
        raise MultipartError("the first boundary is missing")
    pos = start + len(delimiter)
    count = 0
    while True:
        if body.startswith(b"--", pos):
            return  # the close delimiter; the epilogue is ignored
        eol = body.find(b"\r\n", pos)
        if eol < 0 or body[pos:eol].strip(b" \t"):
            raise MultipartError(f"byte {pos}: expected CRLF after a boundary")
        head_start = eol + 2
        if body.startswith(b"\r\n", head_start):
            head_end, content_start = head_start, head_start + 2
        else:
            head_end = body.find(b"\r\n\r\n", head_start, head_start + max_part_header + 4)
            if head_end < 0:
                if len(body) - head_start > max_part_header:
                    raise MultipartError(f"part {count + 1}: header block over {max_part_header} bytes")
                raise MultipartError(f"part {count + 1}: header block not terminated")
            content_start = head_end + 4
        end = body.find(b"\r\n" + delimiter, content_start)
        if end < 0:
            raise MultipartError(f"part {count + 1}: no closing boundary")
        count += 1
        if count > max_parts:
            raise MultipartError(f"more than {max_parts} parts")
        yield _part(body[head_start:head_end], view[content_start:end], count)
        pos = end + 2 + len(delimiter)


def _part(head: bytes, content: memoryview, number: int) -> Part:
    headers: list[tuple[str, str]] = []
    for line in head.split(b"\r\n") if head else ():
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise MultipartError(f"part {number}: malformed header line {line[:40]!r}")
        headers.append((name.decode("latin-1").lower(), value.strip().decode("utf-8", "replace")))
    fields = dict(headers)
    disposition = fields.get("content-disposition")
    if disposition is None:
        raise MultipartError(f"part {number}: no Content-Disposition header")
    kind, params = _params(disposition)
    if kind != "form-data":
        raise MultipartError(f"part {number}: Content-Disposition is {kind!r}, expected form-data")
    return Part(params.get("name"), params.get("filename"), fields.get("content-type", "text/plain"), headers, content)
