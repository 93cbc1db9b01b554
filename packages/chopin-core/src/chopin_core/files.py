"""Serving files: content types, ranges, validators and the static directory mount.

A file response carries a :class:`FileBody` (an open descriptor, an offset and a
length); the worker writes the head, then moves the bytes with ``os.sendfile``
as the socket drains, so no file is read into user space.  Conditional requests
(RFC 9110 13) are answered by the worker from the body's validators: a matching
``If-None-Match`` or an unchanged ``If-Modified-Since`` turns a 200 into a 304.
"""

from __future__ import annotations

import html
import os
import stat
from collections.abc import Callable
from email.utils import formatdate, parsedate_to_datetime
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, unquote

if TYPE_CHECKING:
    from .context import Context
    from .request import Request
    from .response import Response

__all__ = ["FileBody", "content_type_for", "parse_range", "static_handler"]

# Extension -> media type, for the types a web app serves most (RFC 6838 names).
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".xml": "application/xml",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".bmp": "image/bmp",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".wasm": "application/wasm",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".tar": "application/x-tar",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
}
_DEFAULT_TYPE: Final = "application/octet-stream"


def content_type_for(path: str) -> str:
    """The media type for ``path``'s extension (``application/octet-stream`` if unknown)."""
    return CONTENT_TYPES.get(os.path.splitext(path)[1].lower(), _DEFAULT_TYPE)


class FileBody:
    """An open file region a response sends with ``sendfile``.

    Attributes:
        fd: the open descriptor (closed by :meth:`close`).
        offset: where the region starts.
        length: bytes still to send.
        size: the whole file's size.
        etag: the strong validator, ``"<mtime_ns hex>-<size hex>"``.
        mtime: modification time, whole seconds.
    """

    __slots__ = ("etag", "fd", "length", "mtime", "offset", "size")

    def __init__(self, fd: int, st: os.stat_result, offset: int = 0, length: int | None = None) -> None:
        self.fd = fd
        self.size = st.st_size
        self.offset = offset
        self.length = st.st_size - offset if length is None else length
        self.etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        self.mtime = int(st.st_mtime)

    def read_all(self) -> bytes:
        """The region's bytes (the copy path: tests and TLS)."""
        return os.pread(self.fd, self.length, self.offset)

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:  # a response built and never sent must not leak its fd
        self.close()


def open_file(path: str | os.PathLike[str]) -> tuple[int, os.stat_result] | None:
    """Open a regular file for reading; ``None`` if it is missing, unreadable or not a file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


def validator_headers(body: FileBody) -> list[tuple[str, str]]:
    """``ETag``, ``Last-Modified`` and ``Accept-Ranges`` for a file response."""
    return [
        ("ETag", body.etag),
        ("Last-Modified", formatdate(body.mtime, usegmt=True)),
        ("Accept-Ranges", "bytes"),
    ]


def parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """Interpret a ``Range`` header (RFC 9110 14.2) against a file of ``size`` bytes.

    Returns:
        ``(start, length)`` for one satisfiable range; ``None`` to send the whole
        file (no header, a header we ignore as invalid, or several ranges, which
        we may answer in full); ``False`` when the range cannot be satisfied (416).
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec:
        return None
    if "," in spec:
        return None  # a multi-range request may be answered with the whole file
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:  # suffix range: the last N bytes
            count = int(last)
            if count <= 0:
                return False
            count = min(count, size)
            return (size - count, count) if size else False
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        return False  # first-pos past the end: unsatisfiable (RFC 9110 14.1.1)
    if start < 0 or end < start:
        return None
    end = min(end, size - 1)
    return start, end - start + 1


def not_modified(req: Request, body: FileBody) -> bool:
    """Whether the request's validators match, so a 304 can replace the 200 (RFC 9110 13.1)."""
    headers = req.headers
    inm = headers.get("if-none-match")
    if inm is not None:
        tags = [t.strip() for t in inm.split(",")]
        # Weak comparison: W/"x" matches "x".
        return "*" in tags or any(t.removeprefix("W/") == body.etag for t in tags)
    ims = headers.get("if-modified-since")
    if ims is not None:
        try:
            since = parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError, IndexError):
            return False
        return body.mtime <= since
    return False


def static_handler(
    prefix: str,
    directory: str | os.PathLike[str],
    *,
    index: str | None = "index.html",
    listing: bool = False,
    precompressed: bool = True,
) -> Callable[[Context], Response]:
    """A handler serving ``directory`` for the route ``prefix + "/*path"``.

    Paths are resolved and refused unless they stay inside the directory (no
    ``..``, no symlink out of it); a directory serves ``index`` or, if asked, an
    HTML listing; ``.br``/``.gz`` sidecars are served when ``Accept-Encoding``
    allows, with ``Vary: Accept-Encoding``.
    """
    from .response import Response

    root = os.path.realpath(directory)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"static directory {directory!r} does not exist")
    base = prefix.rstrip("/")

    def inside(path: str) -> bool:
        return path == root or path.startswith(root + os.sep)

    def serve_static(ctx: Context) -> Response:
        raw = ctx.params.get("path", "")
        rel = unquote(raw)
        parts = rel.split("/")
        if any(p in ("..", ".") or "\x00" in p or "\\" in p for p in parts):
            return Response.not_found()
        full = os.path.realpath(os.path.join(root, *[p for p in parts if p]))
        if not inside(full):
            return Response.not_found()  # a symlink pointing out of the root
        if os.path.isdir(full):
            if not ctx.req.path.endswith("/"):  # relative links in a directory need the slash
                return Response.redirect(ctx.req.path + "/", 301)
            if index:
                candidate = os.path.join(full, index)
                if os.path.isfile(candidate) and inside(os.path.realpath(candidate)):
                    return _file_response(ctx, os.path.realpath(candidate), precompressed, inside)
            if listing:
                return _listing(base + "/" + raw, full)
            return Response.not_found()
        return _file_response(ctx, full, precompressed, inside)

    serve_static.__doc__ = f"Files under {directory}."
    return serve_static


def _file_response(ctx: Context, path: str, precompressed: bool, inside: Callable[[str], bool]) -> Response:
    from .response import Response

    req = ctx.req
    if precompressed:
        for coding, suffix in (("br", ".br"), ("gzip", ".gz")):
            sidecar = path + suffix
            if os.path.isfile(sidecar) and inside(os.path.realpath(sidecar)):
                if req.accepts_encoding(coding):
                    resp = Response.file(sidecar, content_type_for(path))
                    return resp.with_header("Content-Encoding", coding).with_header("Vary", "Accept-Encoding")
                return Response.file_range(path, req.headers.get("range")).with_header("Vary", "Accept-Encoding")
    return Response.file_range(path, req.headers.get("range"))


def _listing(url_path: str, directory: str) -> Response:
    from .response import Response

    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return Response.not_found()
    title = html.escape(unquote(url_path))
    rows = []
    for name in names:
        slash = "/" if os.path.isdir(os.path.join(directory, name)) else ""
        rows.append(f'<li><a href="{quote(name)}{slash}">{html.escape(name)}{slash}</a></li>')
    body = f"<!doctype html><title>Index of {title}</title><h1>Index of {title}</h1><ul>{''.join(rows)}</ul>"
    return Response.html(body)
