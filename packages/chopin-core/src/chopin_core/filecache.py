"""A bounded cache of small files: their bytes and header lines, revalidated with ``stat``.

A static mount (:func:`chopin_core.staticfiles.static_handler`) answers a small
file from here without opening it, so a request costs the socket's read and
write and no open, fstat, read and close.  How it works:

- An entry is a file's bytes, read whole once, with the header lines its
  responses carry built once: ``Content-Type`` and ``Content-Length``, then
  ``ETag``, ``Last-Modified`` and ``Accept-Ranges``.  A response made from it
  carries a :class:`~chopin_core.files.FileBody` held in memory, so the worker
  answers conditional requests, ``If-Range`` and ``HEAD`` exactly as for a file
  on disk.
- An entry is served with no system call for ``FileCacheLimits.valid`` seconds
  after its last check.  Then one ``stat`` of its path says whether the file is
  the same one (device, inode, size and modification time: what nginx's
  ``open_file_cache`` compares).  The same: served on.  Changed or replaced: read
  again.  Gone or no longer a small regular file: dropped, and the request goes
  the uncached way (a 404, or ``sendfile``).  So a change on disk is served
  within ``valid`` seconds; with ``valid=0`` every request makes the ``stat``.
- A file modified less than :data:`SETTLE_S` before it was read could have been
  written again since without its size or timestamp moving (file timestamps come
  from a coarse clock), so until it has been quiet that long its bytes are read
  again at every check instead of trusting the ``stat``.
- A file is read through :func:`~chopin_core.files.open_file` with the mount's
  directory as ``within``, as an uncached request opens it: what a path leads to
  is checked again whenever the file is read again.
- Files over ``max_file_size`` are not kept; entries are dropped oldest first to
  keep the total (bytes plus :data:`ENTRY_OVERHEAD` each) under ``max_bytes``.

A cache belongs to one handler in one worker process (the workers fork after it
is made and each fills its own): no sharing, no lock.
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat
import time
from typing import TYPE_CHECKING, Final

from ._wire.h1_writer import content_length_line
from .errors import ConfigError
from .files import (
    FIELD_INITIALS,
    FileBody,
    content_type_line,
    etag_of,
    open_file,
    parse_range,
    validator_lines_of,
)
from .response import Response

if TYPE_CHECKING:
    from .request import Request

__all__ = ["DEFAULT_FILE_CACHE", "ENTRY_OVERHEAD", "SETTLE_S", "CachedFile", "FileCache", "FileCacheLimits"]

# What one entry costs beyond its bytes (the entry, its path and header lines, the dict slot),
# counted against max_bytes so that many empty files cannot grow the cache without bound.
ENTRY_OVERHEAD: Final = 512
_FIELD_INITIALS: Final = FIELD_INITIALS
# FileBody.in_memory's object without the call (see FileCache.respond).
_new_object: Final = object.__new__
# A file younger than this when read is read again at each check (see the module docstring).
SETTLE_S: Final = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class FileCacheLimits:
    """How much a static mount keeps in memory, and how long it trusts what it keeps.

    Attributes:
        max_bytes: what all entries may hold, per worker process: their bytes plus
            :data:`ENTRY_OVERHEAD` each.  0 turns the cache off.
        max_file_size: the largest file kept; a larger one is sent from disk with ``sendfile``.
        valid: seconds an entry is served after its last check without looking at
            the file; a change on disk is served at the latest this long after it
            happened.  0: one ``stat`` per request, a change is served at once.

    Raises:
        ConfigError: a limit is negative, or ``valid`` is not a finite number.
    """

    max_bytes: int = 16 * 1024 * 1024
    max_file_size: int = 64 * 1024
    valid: float = 1.0

    def __post_init__(self) -> None:
        if self.max_bytes < 0:
            raise ConfigError(f"FileCacheLimits.max_bytes: expected at least 0, got {self.max_bytes}")
        if self.max_file_size < 0:
            raise ConfigError(f"FileCacheLimits.max_file_size: expected at least 0, got {self.max_file_size}")
        if not math.isfinite(self.valid) or self.valid < 0:
            raise ConfigError(f"FileCacheLimits.valid: expected a finite number of seconds >= 0, got {self.valid}")


# A static mount's cache unless told otherwise: 16 MiB per worker, files up to 64 KiB,
# each checked with one stat at most once a second.
DEFAULT_FILE_CACHE: Final = FileCacheLimits()


class CachedFile:
    """One file held by a :class:`FileCache`.

    Attributes:
        path: the real path it was read from.
        content: the file's bytes.
        etag: its strong validator (the same tag a :class:`FileBody` of the file has).
        mtime: its modification time, whole seconds.
        content_lines: the ``Content-Type`` (from the path's extension) and
            ``Content-Length`` lines of a 200.
        extra_lines: the ``ETag``, ``Last-Modified`` and ``Accept-Ranges`` lines.
        identity: device, inode, size and modification time (ns) when it was read.
        checked: when it was last read or checked (``time.monotonic()``).
        settled: whether it had been unmodified for :data:`SETTLE_S` when it was read.
    """

    __slots__ = ("checked", "content", "content_lines", "etag", "extra_lines", "identity", "mtime", "path", "settled")

    def __init__(self, path: str, content: bytes, st: os.stat_result, checked: float) -> None:
        self.path = path
        self.content = content
        self.etag = etag_of(st)  # the tag a FileBody of the file on disk has
        self.mtime = int(st.st_mtime)
        self.content_lines = content_type_line(path) + content_length_line(len(content))
        self.extra_lines = validator_lines_of(self.etag, self.mtime)
        self.identity = _identity(st)
        self.checked = checked
        self.settled = time.time() - st.st_mtime >= SETTLE_S


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class FileCache:
    """Small files' bytes and header lines, for one static mount in one worker.

    Args:
        limits: the bounds and the check interval.
    """

    __slots__ = ("_entries", "_total", "_valid", "limits")

    def __init__(self, limits: FileCacheLimits) -> None:
        self.limits = limits
        self._valid = limits.valid  # one attribute load on the hot path, not two
        self._entries: dict[str, CachedFile] = {}
        self._total = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total_bytes(self) -> int:
        """What the entries count against ``max_bytes`` now."""
        return self._total

    def get(self, path: str, within: str, now: float) -> CachedFile | None:
        """The entry for the real path ``path``, read or checked first when due.

        Args:
            path: a real path (symlinks resolved) inside ``within``.
            within: the directory the file must lie in (see :func:`~chopin_core.files.open_file`).
            now: ``time.monotonic()``.

        Returns:
            The entry, or ``None`` when the file is not to be served from memory: too
            large, not a regular file, gone, outside ``within``, or changing while it
            was read.  The caller then serves it the uncached way.
        """
        entry = self._entries.get(path)
        if entry is not None and now - entry.checked < self._valid:
            return entry
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if entry is not None:
            if st is not None and entry.settled and _identity(st) == entry.identity:
                entry.checked = now
                return entry
            self._drop(path)
        if st is None or not stat.S_ISREG(st.st_mode) or st.st_size > self.limits.max_file_size:
            return None
        return self._load(path, within, now)

    def respond(self, path: str, within: str, req: Request, now: float, extra: bytes = b"") -> Response | None:
        """The answer to ``req`` for the file at ``path``, from memory.

        Args:
            path: a real path (symlinks resolved) inside ``within``.
            within: the directory the file must lie in.
            req: the request (its ``Range``, if any, is honoured).
            now: ``time.monotonic()``.
            extra: header lines to add after the validators (``Vary``).

        Returns:
            What :meth:`Response.file_range` would answer, with the body in memory;
            ``None`` when the file is not kept (see :meth:`get`).
        """
        entry = self._entries.get(path)
        if entry is None or now - entry.checked >= self._valid:
            entry = self.get(path, within, now)
            if entry is None:
                return None
        for line in req.header_lines:  # has_range_or_precondition, inlined
            if line[0] in _FIELD_INITIALS and (line[:3].lower() == b"if-" or line[:6].lower() == b"range:"):
                return cached_response(entry, req.headers.get("range"), None, extra)
        # The hot path: the whole file, every header line built already.  The body is
        # FileBody.in_memory(entry.content, entry.etag, entry.mtime) with the call inlined
        # (tests/test_filecache.py pins the twin).
        body = _new_object(FileBody)
        body.fd = -1
        body.content = content = entry.content
        body.size = body.length = len(content)
        body.offset = 0
        body.etag = entry.etag
        body.mtime = entry.mtime
        resp = Response(200, b"", b"", entry.extra_lines + extra if extra else entry.extra_lines)
        resp.content_lines = entry.content_lines
        resp.file_body = body
        return resp

    def _load(self, path: str, within: str, now: float) -> CachedFile | None:
        limits = self.limits
        opened = open_file(path, within)
        if opened is None:
            return None
        fd, st = opened
        try:
            if st.st_size > limits.max_file_size or st.st_size + ENTRY_OVERHEAD > limits.max_bytes:
                return None
            # One byte more than fstat says: a file still growing is noticed and not kept.
            content = os.pread(fd, st.st_size + 1, 0)
        except OSError:
            return None
        finally:
            os.close(fd)
        if len(content) != st.st_size:
            return None
        entry = CachedFile(path, content, st, now)
        cost = len(content) + ENTRY_OVERHEAD
        entries = self._entries
        while entries and self._total + cost > limits.max_bytes:
            self._drop(next(iter(entries)))  # the oldest entry (dicts keep insertion order)
        entries[path] = entry
        self._total += cost
        return entry

    def _drop(self, path: str) -> None:
        entry = self._entries.pop(path)
        self._total -= len(entry.content) + ENTRY_OVERHEAD

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()
        self._total = 0


def cached_response(
    entry: CachedFile, range_header: str | None, content_type: bytes | None = None, extra: bytes = b""
) -> Response:
    """The response to a request for ``entry``'s file, as :meth:`Response.file_range` would make it.

    Args:
        entry: the cached file.
        range_header: the request's ``Range`` (RFC 9110 14.2), or ``None``.
        content_type: an encoded ``Content-Type`` line to send instead of the one
            the path's extension gives (a ``.gz`` sidecar is sent as its original's type).
        extra: header lines to add after the validators (``Content-Encoding``, ``Vary``).

    Returns:
        200 with the whole file, 206 with one range, or 416; the body is held in memory.
    """
    content = entry.content
    size = len(content)
    ctype = content_type if content_type is not None else content_type_line(entry.path)
    wanted = parse_range(range_header, size)
    if wanted is False:
        resp = Response(416).with_header("Content-Range", f"bytes */{size}")
        resp.extra_lines += extra
        return resp
    if isinstance(wanted, tuple):
        start, length = wanted
        status = 206
        extra = f"Content-Range: bytes {start}-{start + length - 1}/{size}\r\n".encode() + extra
    else:
        start, length, status = 0, size, 200
    resp = Response(status, b"", b"", entry.extra_lines + extra)
    resp.content_lines = ctype + content_length_line(length)
    resp.file_body = FileBody.in_memory(content, entry.etag, entry.mtime, start, length)
    return resp
