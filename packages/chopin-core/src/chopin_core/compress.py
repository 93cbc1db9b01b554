"""gzip for response bodies and streams, and the opt-in compression middleware."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .context import Context
    from .response import Response
    from .types import AsyncHandler, Handler, Middleware

__all__ = ["compression", "gzip_async_stream", "gzip_stream", "is_compressible"]

_TEXT_LIKE: Final = (
    "application/json",
    "application/javascript",
    "application/xml",
    "application/yaml",
    "image/svg+xml",
)


def is_compressible(content_type: str | None) -> bool:
    """Whether a body of ``content_type`` is text-like, so gzip pays (server-sent events are not compressed)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "text/event-stream":
        return False  # events must leave as produced, and keep-alive comments between them
    return media.startswith("text/") or media in _TEXT_LIKE or media.endswith(("+json", "+xml"))


def gzip_body(body: bytes, level: int = 6) -> bytes:
    """``body`` as a gzip member (mtime 0, so equal bodies compress to equal bytes)."""
    return gzip.compress(body, compresslevel=level, mtime=0)


def gzip_stream(chunks: Iterable[bytes | str], level: int = 6) -> Iterator[bytes]:
    """Compress a stream chunk by chunk.

    Each chunk is followed by a sync flush, so a slow producer's data (server-sent
    events, progress lines) reaches the client as soon as it is produced instead
    of waiting in the compressor.
    """
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: a gzip wrapper
    source = iter(chunks)
    try:
        for chunk in source:
            data = chunk.encode() if isinstance(chunk, str) else chunk
            if data:
                yield compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        yield compressor.flush()
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


async def gzip_async_stream(chunks: AsyncIterator[bytes | str], level: int = 6) -> AsyncIterator[bytes]:
    """:func:`gzip_stream` for an async producer; closing this closes ``chunks``."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    try:
        async for chunk in chunks:
            data = chunk.encode() if isinstance(chunk, str) else chunk
            if data:
                yield compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        yield compressor.flush()
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def compression(min_size: int = 1024, level: int = 6) -> Middleware:
    """Middleware that gzips text-like responses when the client accepts gzip.

    Bodies of ``min_size`` bytes or more and streams are compressed; files (sent
    with sendfile), responses that already have a ``Content-Encoding``, and
    statuses without a body are left alone. Every compressible response gets
    ``Vary: Accept-Encoding``, compressed or not, so caches keep the two apart.

    Args:
        min_size: smallest body worth compressing, in bytes.
        level: zlib level, 1 (fast) to 9 (small).
    """

    def compress(ctx: Context, call_next: Handler) -> Response:
        return _compressed(ctx, call_next(ctx))

    async def compress_waiting(ctx: Context, call_next: AsyncHandler) -> Response:
        return _compressed(ctx, await call_next(ctx))

    def _compressed(ctx: Context, resp: Response) -> Response:
        if resp.file_body is not None or resp.status in (204, 304) or resp.status < 200:
            return resp
        if resp.content_encoding is not None or not is_compressible(resp.content_type):
            return resp
        if resp.stream_body is None and len(resp.body) < min_size:
            return resp
        resp.with_header("Vary", "Accept-Encoding")
        if ctx.req.accepts_encoding("gzip"):
            resp.gzip(level)
        return resp

    # Its async form, for routes whose handler waits (as middleware.with_async_form attaches it;
    # not imported from there: middleware imports response, which imports this module).
    compress.asynchronous = compress_waiting  # type: ignore[attr-defined]
    return compress
