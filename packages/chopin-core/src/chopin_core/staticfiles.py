"""The static directory mount: :func:`static_handler` serves a directory under a route prefix.

Paths are resolved once and cached for a second; a path that would leave the
directory is a 404.  Small files are answered from a :class:`~chopin_core.filecache.FileCache`
(their bytes and header lines kept, checked with ``stat`` every
``FileCacheLimits.valid`` seconds); the others are opened per request and sent
with ``sendfile`` (:mod:`chopin_core.files`).
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable
from typing import Final, NamedTuple
from urllib.parse import quote, unquote

from .context import Context
from .filecache import DEFAULT_FILE_CACHE, FileCache, FileCacheLimits, cached_response
from .files import content_type_for, content_type_line, has_range_or_precondition
from .request import Request
from .response import Response

__all__ = ["static_handler"]


def static_handler(
    prefix: str,
    directory: str | os.PathLike[str],
    *,
    index: str | None = "index.html",
    listing: bool = False,
    precompressed: bool = True,
    cache: FileCacheLimits | None = DEFAULT_FILE_CACHE,
) -> Callable[[Context], Response]:
    """A handler serving ``directory`` for the route ``prefix + "/*path"``.

    Paths are resolved and refused unless they stay inside the directory (no
    ``..``, no symlink out of it); a directory serves ``index`` or, if asked, an
    HTML listing; ``.br``/``.gz`` sidecars are served when ``Accept-Encoding``
    allows, with ``Vary: Accept-Encoding``.  Files up to ``cache.max_file_size``
    are kept in memory (see :mod:`chopin_core.filecache`); ``cache=None`` opens
    every file per request.
    """
    from .response import Response

    root = os.path.realpath(directory)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"static directory {directory!r} does not exist")
    base = prefix.rstrip("/")

    def inside(path: str) -> bool:
        return path == root or path.startswith(root + os.sep)

    def sidecars_of(path: str) -> tuple[tuple[str, str], ...]:
        if not precompressed:
            return ()
        found = []
        for coding, suffix in (("br", ".br"), ("gzip", ".gz")):
            real = os.path.realpath(path + suffix)
            if inside(real) and os.path.isfile(real):
                found.append((coding, real))
        return tuple(found)

    def resolve(raw: str) -> _Resolved | None:
        parts = unquote(raw).split("/")
        if any(p in ("..", ".") or "\x00" in p or "\\" in p for p in parts):
            return None
        full = os.path.realpath(os.path.join(root, *[p for p in parts if p]))
        if not inside(full):
            return None  # a symlink pointing out of the root
        if os.path.isdir(full):
            found = None
            if index:
                candidate = os.path.realpath(os.path.join(full, index))
                if inside(candidate) and os.path.isfile(candidate):
                    found = candidate
            return _Resolved(full, True, found, sidecars_of(found) if found else ())
        if not os.path.isfile(full):
            return None
        return _Resolved(full, False, None, sidecars_of(full))

    # Resolving a path costs several system calls (realpath walks it component by
    # component), so results are kept for a second. What is kept is the real path
    # already checked to be inside the root, so a symlink swapped in later is never
    # followed; a file deleted meanwhile simply gives 404 when it is opened.
    resolved: dict[str, tuple[float, _Resolved | None]] = {}
    files = FileCache(cache) if cache is not None and cache.max_bytes > 0 else None

    def serve_static(ctx: Context) -> Response:
        raw = ctx.params.get("path", "")
        now = time.monotonic()
        hit = resolved.get(raw)
        if hit is not None and hit[0] > now:
            found = hit[1]
        else:
            found = resolve(raw)
            if len(resolved) >= _RESOLVE_CACHE_SIZE:
                resolved.clear()
            resolved[raw] = (now + _RESOLVE_TTL, found)
        if found is None:
            return Response.not_found()
        if not found.sidecars and not found.is_dir and files is not None:
            # The hot path: a plain file, kept in memory.
            resp = files.respond(found.path, root, ctx.req, now)
            if resp is not None:
                return resp
            return Response.file_range(found.path, _range_of(ctx.req), None, within=root)
        if found.is_dir:
            path = ctx.req.path
            if not path.endswith("/"):  # relative links in a directory need the slash
                # Empty segments go: "//host" would be a protocol-relative URL, a redirect
                # off our origin (the path reached here only because "//" splits to "").
                return Response.redirect("/" + "".join(seg + "/" for seg in path.split("/") if seg), 301)
            if found.index_file is not None:
                return _file_response(ctx, root, found.index_file, found.sidecars, files, now)
            if listing:
                return _listing(base + "/" + raw, found.path)
            return Response.not_found()
        return _file_response(ctx, root, found.path, found.sidecars, files, now)

    serve_static.__doc__ = f"Files under {directory}."
    return serve_static


class _Resolved(NamedTuple):
    """Where a static URL path leads: a file, or a directory and its index file."""

    path: str
    is_dir: bool
    index_file: str | None
    sidecars: tuple[tuple[str, str], ...]


_RESOLVE_TTL: Final = 1.0
_RESOLVE_CACHE_SIZE: Final = 4096


_VARY: Final = b"Vary: Accept-Encoding\r\n"


def _file_response(
    ctx: Context, root: str, path: str, sidecars: tuple[tuple[str, str], ...], files: FileCache | None, now: float
) -> Response:
    """A file of the mount: from ``files`` when it keeps it, else opened now (``sendfile``)."""
    from .response import Response

    req = ctx.req
    if sidecars:
        for coding, sidecar in sidecars:
            if req.accepts_encoding(coding):
                # A precompressed sidecar is the whole representation: no Range on it.
                entry = files.get(sidecar, root, now) if files is not None else None
                if entry is not None:
                    lines = b"Content-Encoding: " + coding.encode() + b"\r\n" + _VARY
                    return cached_response(entry, None, content_type_line(path), lines)
                resp = Response.file_range(sidecar, None, content_type_for(path), within=root)
                return resp.with_header("Content-Encoding", coding).with_header("Vary", "Accept-Encoding")
        cached = files.respond(path, root, req, now, _VARY) if files is not None else None
        if cached is not None:
            return cached
        resp = Response.file_range(path, req.headers.get("range"), None, within=root)
        return resp.with_header("Vary", "Accept-Encoding")
    cached = files.respond(path, root, req, now) if files is not None else None
    if cached is not None:
        return cached
    return Response.file_range(path, _range_of(req), None, within=root)


def _range_of(req: Request) -> str | None:
    """The request's ``Range``, found without decoding its other fields when it has none."""
    return req.headers.get("range") if has_range_or_precondition(req.header_lines) else None


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
