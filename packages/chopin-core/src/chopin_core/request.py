"""The parsed request and its lazily decoded headers."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import BinaryIO, ClassVar
from urllib.parse import parse_qsl, unquote

__all__ = ["H2Request", "Headers", "Request", "SpooledRequest"]


class Headers:
    """Case-insensitive, multi-valued view of a request's header fields.

    Built on first use from the raw header lines the parser already split, so a
    handler that reads no header pays nothing for it.
    """

    __slots__ = ("_items", "_map")

    def __init__(self, lines: Sequence[bytes]) -> None:
        items: list[tuple[str, str]] = []
        index: dict[str, str] = {}
        for line in lines:
            colon = line.find(b":")
            # latin-1 cannot fail: HTTP/1.1 names are tokens already, HTTP/2 ones may hold any byte.
            name = line[:colon].decode("latin-1").lower()
            value = line[colon + 1 :].strip(b" \t").decode("latin-1")
            items.append((name, value))
            if name in index:
                # RFC 9110 5.3: repeated fields combine into a comma-separated list.
                index[name] = index[name] + ", " + value
            else:
                index[name] = value
        self._items = items
        self._map = index

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of ``name`` (any case), repeated fields joined by ``", "``."""
        return self._map.get(name.lower(), default)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` (any case), in the order received."""
        key = name.lower()
        return [v for k, v in self._items if k == key]

    def items(self) -> list[tuple[str, str]]:
        """All fields as ``(lower-case name, value)`` pairs, in order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Request:
    """One HTTP request as the parser framed it.

    Attributes:
        method: the method token, e.g. ``"GET"``.
        target: the request-target exactly as sent.
        path: the path part of the target (still percent-encoded).
        query: the raw query string, without ``?``, or ``None`` when absent.
        http11: ``True`` for HTTP/1.1, ``False`` for HTTP/1.0.
        keep_alive: whether the connection stays open after the response.
        header_lines: the header fields as received, one ``b"Name: value"`` line
            each, nothing decoded or combined (a quick look for a field costs less
            here than :attr:`headers`, which decodes them all).
        body: the whole body, de-chunked.  A body larger than
            ``Settings.body_spool_threshold`` arrives in a temporary file instead
            (:class:`SpooledRequest`); reading ``body`` then loads it into memory,
            so read a large body with :meth:`body_stream`.
        spooled: whether the body is in a temporary file (see :attr:`body`).
    """

    __slots__ = ("_headers", "body", "header_lines", "http11", "keep_alive", "method", "path", "query", "target")
    spooled: ClassVar[bool] = False

    def __init__(
        self,
        method: str,
        target: str,
        path: str,
        query: str | None,
        http11: bool,
        keep_alive: bool,
        header_lines: Sequence[bytes],
        body: bytes = b"",
    ) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.http11 = http11
        self.keep_alive = keep_alive
        self.header_lines = header_lines
        self._headers: Headers | None = None
        self.body = body

    @property
    def headers(self) -> Headers:
        """The header fields, decoded on first access."""
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers(self.header_lines)
        return headers

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or ``None``."""
        return self.headers.get(name)

    @property
    def body_size(self) -> int:
        """The body's length in bytes (without reading a spooled body)."""
        return len(self.body)

    def body_stream(self) -> BinaryIO:
        """The body as a binary file positioned at its start (a copy-free reader for a spooled body).

        Each call returns a new reader with its own position; close it when done
        (a ``with`` block): that does not affect :attr:`body`.
        """
        return io.BytesIO(self.body)

    @property
    def version(self) -> str:
        """``"HTTP/1.1"`` or ``"HTTP/1.0"`` (``"HTTP/2"`` for an :class:`H2Request`)."""
        return "HTTP/1.1" if self.http11 else "HTTP/1.0"

    @property
    def decoded_path(self) -> str:
        """The path with percent-escapes decoded (UTF-8)."""
        return unquote(self.path) if "%" in self.path else self.path

    def accepts_encoding(self, coding: str) -> bool:
        """Whether ``Accept-Encoding`` allows ``coding`` (``*`` counts; ``q=0`` refuses)."""
        value = self.headers.get("accept-encoding")
        if not value:
            return False
        allowed = False
        for item in value.split(","):
            name, _, params = item.strip().partition(";")
            name = name.strip().lower()
            if name not in (coding, "*"):
                continue
            q = params.strip().replace(" ", "")
            if q.startswith("q="):
                try:
                    weight = float(q[2:])
                except ValueError:
                    weight = 0.0
            else:
                weight = 1.0
            if name == coding:
                return weight > 0  # an explicit entry wins over "*"
            allowed = weight > 0
        return allowed

    def query_params(self) -> dict[str, str]:
        """The query string as a dict; the last of repeated keys wins."""
        return dict(parse_qsl(self.query, keep_blank_values=True)) if self.query else {}

    def query_list(self) -> list[tuple[str, str]]:
        """The query string as ordered ``(key, value)`` pairs, repeats kept."""
        return parse_qsl(self.query, keep_blank_values=True) if self.query else []

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} {self.version}>"


class H2Request(Request):
    """A request that arrived on an HTTP/2 stream: the same fields, ``version`` ``"HTTP/2"``.

    A subclass rather than a field, so that HTTP/1.1 requests pay nothing for it.
    ``http11`` is ``True`` (HTTP/1.1 semantics: persistent connection, chunked bodies
    never apply on a stream).
    """

    __slots__ = ()

    @property
    def version(self) -> str:
        """``"HTTP/2"``."""
        return "HTTP/2"


class SpooledRequest(Request):
    """A request whose body was written to a temporary file as it arrived.

    The worker builds one when a body passes ``Settings.body_spool_threshold``.
    ``body`` reads the whole file into memory on first use (and keeps it for the
    request); :meth:`body_stream` reads it in pieces.  The file is closed, and its
    disk space given back, when the request is released: after its response, or
    after a streamed response that refers to it has ended.

    Args:
        head: the request as parsed, whose fields are taken over.
        file: the body, an unnamed temporary file (this request owns it).
        size: the body's length in bytes.
    """

    __slots__ = ("_file", "_loaded", "_size")
    spooled: ClassVar[bool] = True

    def __init__(self, head: Request, file: BinaryIO, size: int) -> None:
        # Not Request.__init__: that would store an empty body through the property below.
        self.method = head.method
        self.target = head.target
        self.path = head.path
        self.query = head.query
        self.http11 = head.http11
        self.keep_alive = head.keep_alive
        self.header_lines = head.header_lines
        self._headers = head._headers  # noqa: SLF001  same module: the subclass takes over its head's parsed fields
        self._file: BinaryIO | None = file
        self._loaded: bytes | None = None
        self._size = size

    @property
    def body(self) -> bytes:
        """The whole body, read from the file on first use."""
        data = self._loaded
        if data is None:
            file = self._file
            if file is None:
                return b""
            file.seek(0)
            data = self._loaded = file.read()
        return data

    @body.setter
    def body(self, value: bytes) -> None:
        self._loaded = value
        self._size = len(value)
        self.close()

    @property
    def body_size(self) -> int:
        """The body's length in bytes."""
        return self._size

    def body_stream(self) -> BinaryIO:
        """A new reader of the body file, positioned at its start."""
        file = self._file
        if file is None or self._loaded is not None:
            return io.BytesIO(self.body)
        file.flush()
        # A second open file description of the (unnamed) file: its own position,
        # and closing it leaves ours open.
        return open(f"/proc/self/fd/{file.fileno()}", "rb")

    def close(self) -> None:
        """Close the body file now (``body`` still answers if it was read before)."""
        file = self._file
        if file is not None:
            self._file = None
            file.close()

    def __del__(self) -> None:
        self.close()
