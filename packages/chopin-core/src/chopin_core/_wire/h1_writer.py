"""HTTP/1.1 response framing, sans-IO: what goes on the wire for a response, as bytes.

The worker's hot path (:meth:`chopin_core.worker.Worker.respond`) writes the same
bytes inline, as a tuple of pre-encoded pieces appended to the connection's output,
because a function call per response is measurable there.  :func:`frame_response`
is the readable twin of that code: one function, one branch per rule, the RFC
beside it.  ``tests/test_h1_writer.py`` pins the two together for every combination
of method, status, version, keep-alive and body kind, so a framing fix made in one
place and not the other fails a test.

The rules (RFC 9112 6 and 9; RFC 9110 6.4.1, 9.3.2):

- 204 and 304 carry no content and no ``Content-Length`` or ``Content-Type``;
- a HEAD answer is the GET head with no body;
- a body of known length is framed by ``Content-Length``; a stream by chunked coding
  on HTTP/1.1 and by closing the connection on HTTP/1.0, which has no chunked coding;
- a persistent HTTP/1.1 connection needs no ``Connection`` field, HTTP/1.0 needs
  ``Connection: keep-alive``, and the last answer on a connection says ``Connection: close``.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Final

__all__ = [
    "BUSY",
    "CHUNKED",
    "CL_LINES",
    "CONTINUE_LINE",
    "END",
    "END_CLOSE",
    "END_KEEPALIVE",
    "LAST_CHUNK",
    "NO_BODY",
    "STATUS_LINES",
    "TEXT_PLAIN",
    "VIA",
    "chunk",
    "content_length_line",
    "error_answer",
    "frame_response",
    "head_end",
    "status_line",
    "timeout_answer",
]

_REASONS: Final = {s.value: s.phrase for s in HTTPStatus}
# Pre-encoded status lines; status_line() adds any other code it is asked for.
STATUS_LINES: Final = {code: f"HTTP/1.1 {code} {phrase}\r\n".encode("ascii") for code, phrase in _REASONS.items()}
# Pre-encoded Content-Length lines for small bodies (Response.__init__ indexes this inline).
CL_LINES: Final = [b"Content-Length: %d\r\n" % n for n in range(4096)]

TEXT_PLAIN: Final = b"Content-Type: text/plain; charset=utf-8\r\n"
# The blank line that ends a head, alone (HTTP/1.1 persists by default, RFC 9112 9.3) or after a Connection field.
END: Final = b"\r\n"
END_CLOSE: Final = b"Connection: close\r\n\r\n"
END_KEEPALIVE: Final = b"Connection: keep-alive\r\n\r\n"
CHUNKED: Final = b"Transfer-Encoding: chunked\r\n"
# RFC 9112 7.1: last-chunk (size 0), no trailers, the final CRLF.
LAST_CHUNK: Final = b"0\r\n\r\n"
CONTINUE_LINE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
# RFC 9110 6.4.1: these carry no content and no Content-Length.
NO_BODY: Final = frozenset({204, 304})
# RFC 9110 7.6.3: what this server adds to Via when it forwards a message.
VIA: Final = "1.1 chopin"
# The answer to a connection over the worker's capacity (it is closed after).
BUSY: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 19\r\nConnection: close\r\n\r\nService Unavailable"
)


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n`` for any status in 100..999.

    Raises:
        ValueError: ``status`` is outside 100..999.
    """
    line = STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise ValueError(f"status: expected 100..999, got {status}")
        line = STATUS_LINES[status] = f"HTTP/1.1 {status} Unknown\r\n".encode("ascii")
    return line


def content_length_line(length: int) -> bytes:
    """``Content-Length: <n>\\r\\n``, from a table for small bodies."""
    return CL_LINES[length] if length < 4096 else b"Content-Length: %d\r\n" % length


def head_end(keep_alive: bool, http11: bool) -> bytes:
    """The ``Connection`` field (if one is needed) and the blank line that end a head."""
    if not keep_alive:
        return END_CLOSE
    return END if http11 else END_KEEPALIVE


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 7.1): hex size, CRLF, data, CRLF; ``b""`` for no data.

    An empty chunk would read as the last one, so it is never written.
    """
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


def frame_response(
    *,
    status: int,
    date_line: bytes,
    content: bytes,
    extra: bytes = b"",
    method: str = "GET",
    http11: bool = True,
    keep_alive: bool = True,
    body: bytes = b"",
    chunks: Iterable[bytes] | None = None,
) -> tuple[bytes, bool]:
    """The bytes of one HTTP/1.1 response, and whether the connection stays open after it.

    Args:
        status: the status code.
        date_line: the ``Server`` and ``Date`` lines the worker refreshes once a second.
        content: the ``Content-Type`` and (for a body of known length) ``Content-Length`` lines.
        extra: every other header line, encoded.
        method: the request's method (``HEAD`` gets the head alone).
        http11: the request was HTTP/1.1 (else 1.0).
        keep_alive: the connection may stay open (the request, the response and the worker agree).
        body: the body, when its length is known.
        chunks: the body as a stream of unknown length, instead of ``body``.

    Returns:
        The response's bytes and whether the connection persists after it.
    """
    line = status_line(status)
    if status in NO_BODY:
        return line + date_line + extra + head_end(keep_alive, http11), keep_alive
    if chunks is not None:
        if http11:
            head = line + date_line + content + CHUNKED + extra + head_end(keep_alive, http11)
            if method == "HEAD":
                return head, keep_alive
            return head + b"".join(chunk(c) for c in chunks) + LAST_CHUNK, keep_alive
        # HTTP/1.0 has no chunked coding: the body ends when the connection does.
        head = line + date_line + content + extra + END_CLOSE
        return (head if method == "HEAD" else head + b"".join(chunks)), False
    head = line + date_line + content + extra + head_end(keep_alive, http11)
    return (head if method == "HEAD" else head + body), keep_alive


def error_answer(status: int, message: bytes, date_line: bytes) -> bytes:
    """A ``text/plain`` answer that closes the connection (a protocol error, a timeout)."""
    return status_line(status) + date_line + TEXT_PLAIN + content_length_line(len(message)) + END_CLOSE + message


def timeout_answer(date_line: bytes) -> bytes:
    """The 408 sent to a connection whose request head or body came too slowly."""
    return error_answer(408, b"Request Timeout", date_line)
