"""Serving files: content types, ranges, validators and the body a file response carries.

A file response carries a :class:`FileBody` (an open descriptor, an offset and a
length); the worker writes the head, then moves the bytes with ``os.sendfile``
as the socket drains, so no large file is read into user space (a small one is
read and written with its head, and a :class:`~chopin_core.filecache.FileCache`
keeps small files' bytes, so a body may also be held in memory).  Conditional
requests (RFC 9110 13) are answered by the worker from the body's validators: a
matching ``If-None-Match`` or an unchanged ``If-Modified-Since`` turns a 200 into
a 304, and an ``If-Range`` that no longer matches turns a 206 into a 200 of the
whole file."""

from __future__ import annotations

import calendar
import os
import re
import stat
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .request import Request

__all__ = ["FileBody", "content_type_for", "parse_range"]

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
    """A file region a response sends: an open descriptor, or the bytes of a cached file.

    Attributes:
        fd: the open descriptor (closed by :meth:`close`), or -1 for a body held in memory.
        content: the whole file's bytes when it came from a
            :class:`~chopin_core.filecache.FileCache` (no descriptor), else ``None``.
        offset: where the region starts.
        length: bytes still to send.
        size: the whole file's size.
        etag: the strong validator, ``"<mtime_ns hex>-<size hex>"``; for a
            ``part``, ``"<mtime_ns hex>-<size hex>-<offset hex>-<length hex>"``.
        mtime: modification time, whole seconds.
    """

    __slots__ = ("content", "etag", "fd", "length", "mtime", "offset", "size")

    def __init__(
        self, fd: int, st: os.stat_result, offset: int = 0, length: int | None = None, *, part: bool = False
    ) -> None:
        self.fd = fd
        self.content: bytes | None = None
        self.size = st.st_size
        self.offset = offset
        self.length = st.st_size - offset if length is None else length
        if part:
            # A region sent as a representation of its own (Response.sendfile): the
            # whole file's tag would let a cache or an If-None-Match treat the slice
            # and the file (or two slices) as the same bytes.
            self.etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}-{offset:x}-{self.length:x}"'
        else:
            self.etag = etag_of(st)
        self.mtime = int(st.st_mtime)

    @classmethod
    def in_memory(cls, content: bytes, etag: str, mtime: int, offset: int = 0, length: int | None = None) -> FileBody:
        """A region of a file already read whole (``content``), with that file's validators."""
        body = _new_object(cls)
        body.fd = -1
        body.content = content
        body.size = len(content)
        body.offset = offset
        body.length = len(content) - offset if length is None else length
        body.etag = etag
        body.mtime = mtime
        return body

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes from :attr:`offset` (not advanced); ``b""`` past the end of the file."""
        content = self.content
        if content is not None:
            return content[self.offset : self.offset + min(size, self.length)]
        return os.pread(self.fd, min(size, self.length), self.offset)

    def read_all(self) -> bytes:
        """The region's bytes (the copy path: small files, tests, TLS)."""
        content = self.content
        if content is not None:
            # The whole file is the common case: slicing all of a bytes object returns it, uncopied.
            return content[self.offset : self.offset + self.length]
        return os.pread(self.fd, self.length, self.offset)

    def close(self) -> None:
        """Close the descriptor (idempotent; nothing to do for a body in memory)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:  # a response built and never sent must not leak its fd
        if self.fd >= 0:  # not a call for a body in memory (one per cached file answered)
            self.close()


def etag_of(st: os.stat_result) -> str:
    """A whole file's strong validator, ``"<mtime_ns hex>-<size hex>"``, from its ``stat``."""
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


# FileBody.in_memory without __init__ (which wants an os.stat_result): one object per cache hit.
_new_object: Final = object.__new__


def open_file(path: str | os.PathLike[str], within: str | None = None) -> tuple[int, os.stat_result] | None:
    """Open a regular file for reading; ``None`` if it is missing, unreadable or not a file.

    With ``within`` (a real directory path), the file actually opened must lie in
    it: what the descriptor leads to is checked after the open, so a path component
    swapped for a symlink between resolving and opening cannot lead out.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    if within is not None:
        try:
            opened = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            opened = ""
        if not opened.startswith(within + os.sep):
            os.close(fd)
            return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(timestamp: float) -> str:
    """``timestamp`` as an IMF-fixdate (RFC 9110 5.6.7), e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    t = time.gmtime(timestamp)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


# The three HTTP-date forms a recipient must accept (RFC 9110 5.6.7), ASCII digits only.
_IMF_FIXDATE: Final = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) ([A-Z][a-z][a-z]) (\d\d\d\d) (\d\d):(\d\d):(\d\d) GMT", re.ASCII
)
_RFC850_DATE: Final = re.compile(
    r"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, (\d\d)-([A-Z][a-z][a-z])-(\d\d) (\d\d):(\d\d):(\d\d) GMT", re.ASCII
)
_ASCTIME_DATE: Final = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z][a-z]) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\d\d\d\d)", re.ASCII
)
_MONTH_NUMBERS: Final = {name: number for number, name in enumerate(_MONTHS, 1)}


def parse_http_date(value: str) -> int | None:
    """``value`` as a POSIX timestamp, or ``None`` when it is not a valid HTTP-date.

    Accepts IMF-fixdate, the obsolete RFC 850 form and asctime (RFC 9110 5.6.7).
    Fields are fixed-width, so no value a client sends can overflow anything; a
    field out of range (month 13, 25 o'clock, 31 February) gives ``None``, and the
    caller ignores the header as RFC 9110 13.1.3 asks of an invalid date.
    """
    value = value.strip(" \t")
    if m := _IMF_FIXDATE.fullmatch(value):
        day, month, year, hour, minute, second = m.groups()
    elif m := _RFC850_DATE.fullmatch(value):
        day, month, yy, hour, minute, second = m.groups()
        # A two-digit year more than 50 years ahead is in the past century (RFC 9110 5.6.7).
        this_year = time.gmtime().tm_year
        full = this_year - this_year % 100 + int(yy)
        year = str(full - 100 if full > this_year + 50 else full)
    elif m := _ASCTIME_DATE.fullmatch(value):
        month, day, hour, minute, second, year = m.groups()
    else:
        return None
    number = _MONTH_NUMBERS.get(month)
    y, d, h, mi, sec = int(year), int(day), int(hour), int(minute), int(second)
    if number is None or y < 1 or not 1 <= d <= calendar.monthrange(y, number)[1]:
        return None
    if h > 23 or mi > 59 or sec > 60:  # 60: a leap second
        return None
    return calendar.timegm((y, number, d, h, mi, sec, 0, 0, 0))


def validator_lines(body: FileBody) -> bytes:
    """``ETag``, ``Last-Modified`` and ``Accept-Ranges`` lines for a file response."""
    return validator_lines_of(body.etag, body.mtime)


def validator_lines_of(etag: str, mtime: int) -> bytes:
    """``ETag``, ``Last-Modified`` and ``Accept-Ranges`` lines for a file of this tag and time."""
    return f"ETag: {etag}\r\nLast-Modified: {http_date(mtime)}\r\nAccept-Ranges: bytes\r\n".encode()


def content_type_line(path: str) -> bytes:
    """The encoded ``Content-Type`` line for ``path``'s extension."""
    return _CONTENT_TYPE_LINES.get(os.path.splitext(path)[1].lower(), _DEFAULT_TYPE_LINE)


_CONTENT_TYPE_LINES: Final = {ext: f"Content-Type: {ctype}\r\n".encode() for ext, ctype in CONTENT_TYPES.items()}
_DEFAULT_TYPE_LINE: Final = f"Content-Type: {_DEFAULT_TYPE}\r\n".encode()


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
    first, last = first.strip(" \t"), last.strip(" \t")
    # 1*DIGIT (RFC 9110 14.1.1): int() alone would also take "+5", "1_0" and non-ASCII digits.
    if not dash or not _is_digits(first or last) or (first and last and not _is_digits(last)):
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
    except ValueError:  # past sys.get_int_max_str_digits(): a header we ignore
        return None
    if start >= size:
        return False  # first-pos past the end: unsatisfiable (RFC 9110 14.1.1)
    if start < 0 or end < start:
        return None
    end = min(end, size - 1)
    return start, end - start + 1


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def if_range_holds(req: Request, body: FileBody) -> bool:
    """Whether a Range may be honoured under the request's ``If-Range`` (RFC 9110 13.1.5).

    True without ``If-Range``.  An entity-tag must match the file's strong tag
    exactly (a weak tag never does); an HTTP-date must equal ``Last-Modified``
    exactly, and only counts when that date is a strong validator (the file is
    at least a second older than now: RFC 9110 8.8.2.2).  Anything else, an
    invalid date included, is false: the whole representation is sent.
    """
    value = req.headers.get("if-range")
    if value is None:
        return True
    value = value.strip(" \t")
    if value.startswith(('"', "W/")):
        return value == body.etag
    when = parse_http_date(value)
    # body.mtime is truncated to the second, so 2 s ahead of it is surely 1 s after the real mtime.
    return when is not None and when == body.mtime and time.time() >= body.mtime + 2


def has_range_or_precondition(lines: Sequence[bytes]) -> bool:
    """Whether a ``Range`` or an ``If-*`` field is among a request's raw header ``lines``.

    A look at the first bytes of each line: most requests have neither, and then
    decoding every field (:attr:`Request.headers`) to find out would cost more
    than the rest of a cached file's answer.
    """
    for line in lines:
        # A field name starts its line, so a line starting with none of these letters is neither.
        if line[0] in FIELD_INITIALS and (line[:3].lower() == b"if-" or line[:6].lower() == b"range:"):
            return True
    return False


# The first bytes of "If-" and "Range" in either case, for the loops above and filecache's
# inlined copy: an int set, as `line[0] in` is one lookup where `line[:1] in b"iIrR"`
# slices and runs a substring search.
FIELD_INITIALS: Final = frozenset(b"iIrR")


def not_modified(req: Request, body: FileBody) -> bool:
    """Whether the request's validators match, so a 304 can replace the 200 (RFC 9110 13.1)."""
    for line in req.header_lines:  # has_range_or_precondition inlined: this runs for every file answered
        if line[0] in FIELD_INITIALS and (line[:3].lower() == b"if-" or line[:6].lower() == b"range:"):
            break
    else:
        return False
    headers = req.headers
    inm = headers.get("if-none-match")
    if inm is not None:
        tags = [t.strip() for t in inm.split(",")]
        # Weak comparison: W/"x" matches "x".
        return "*" in tags or any(t.removeprefix("W/") == body.etag for t in tags)
    ims = headers.get("if-modified-since")
    if ims is not None:
        since = parse_http_date(ims)
        return since is not None and body.mtime <= since  # an invalid date is ignored (RFC 9110 13.1.3)
    return False
