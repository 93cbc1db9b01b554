"""COPY streaming: :class:`CopyWriter` (``COPY ... FROM STDIN``) and :class:`CopyReader` (``COPY ... TO STDOUT``).

::

    with conn.copy_in("COPY t (id, name, born) FROM STDIN") as writer:
        writer.write_row((1, "tab\\there", date(2000, 1, 1)))
        writer.write_row((2, None, None))
    print(writer.rowcount)

    with conn.copy_out("COPY t TO STDOUT") as reader:
        for chunk in reader:  # one CopyData payload (a row, in text format) at a time
            ...

The connection is in COPY mode while a writer or reader is open and refuses
other commands.  Memory is bounded both ways: the writer buffers rows and
sends a CopyData message each time 64 KiB have accumulated; the reader reads
the socket only when no complete message is buffered (§55.2.6 "COPY Operations").

:func:`format_copy_row` is the pure text-format encoder (PostgreSQL docs,
COPY, "Text Format"): columns separated by tab, rows ended by newline, NULL as
``\\N``, and backslash, tab, newline and carriage return escaped.  The writer
uses an equivalent encoder specialised to the shape of its first row
(:mod:`chopin_pg._copy_text`).  For a binary COPY, :meth:`CopyWriter.set_types`
names the column types and the rows are encoded in the binary format
(:mod:`chopin_pg._copy_binary`); :meth:`Connection.copy_records
<chopin_pg.connection.Connection.copy_records>` does that for a table, reading its
column types first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from . import _copy_binary as binary
from . import _copy_ops as ops
from . import protocol as p
from ._copy_text import RowFormatter, RowsWriter, format_copy_row, row_formatter, rows_writer
from ._result import Result
from .errors import InterfaceError, PgError, QueryCanceled

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["FLUSH_SIZE", "CopyReader", "CopyWriter", "format_copy_row"]

#: The writer sends a CopyData message once this many bytes are buffered.
FLUSH_SIZE = 65536


class CopyWriter:
    """An open ``COPY ... FROM STDIN``; get it from :meth:`Connection.copy_in`.

    Use it as a context manager: leaving the block finishes the COPY, or fails
    it (CopyFail, nothing is copied) if the block raised.

    Attributes:
        format: 0 for text or csv, 1 for binary (from CopyInResponse).
        rowcount: Rows copied, once finished (-1 before).
    """

    def __init__(self, conn: Connection, sql: str) -> None:
        self._conn = conn
        self._buffer = bytearray()
        self._open = False
        self._rows_open = False  # open and in text format: write_row's one check
        self._format_row: RowFormatter = self._format_first_row
        self._shape: tuple[type, ...] | None = None  # the types of the first row
        self._binary_rows: RowsWriter | None = None  # binary COPY with set_types: the rows' encoder
        self.rowcount = -1
        conn.enter_busy("COPY FROM STDIN")
        try:
            self.format: int = conn.wait(ops.copy_in_start(conn.session, sql))
        except BaseException:
            conn.leave_busy()
            raise
        self._open = True
        self._rows_open = self.format == 0

    @property
    def closed(self) -> bool:
        """Whether the COPY ended (finished or failed)."""
        return not self._open

    def _check(self) -> None:
        if not self._open:
            raise InterfaceError("COPY FROM STDIN already ended: finish() or fail() was called")

    def _flush(self) -> None:
        buffer = self._buffer
        message = p.copy_data_header(len(buffer)) + buffer  # one copy of the buffer, not two
        buffer.clear()
        try:
            self._conn.wait(ops.send(message))
        except BaseException:
            self._end()
            raise

    def _format_first_row(self, values: Sequence[Any]) -> bytes:
        # Rows of one COPY nearly always share their types: encode the rest with an
        # encoder made for the first row's (same bytes, a third of the time, see _copy_text).
        self._shape = tuple(map(type, values)) if isinstance(values, list | tuple) else ()
        self._format_row = row_formatter(self._shape)
        return format_copy_row(values)

    def set_types(self, type_oids: Sequence[int]) -> None:
        """Say the column types of a binary COPY, so that :meth:`write_row` and :meth:`write_rows` can encode rows.

        Writes the binary file header: call it before writing any data.  :meth:`finish`
        then writes the trailer.  Values must suit their column type (``int`` for
        integers, ``float`` or ``int`` for floats, ``str`` for text, ``datetime``
        for timestamps...); anything else raises :class:`~chopin_pg.errors.DataError`.

        Args:
            type_oids: One type OID per column (:mod:`chopin_pg.oids`), in the COPY's column order.

        Raises:
            InterfaceError: The COPY is not binary, already ended, or a type has no binary encoder.
        """
        self._check()
        if self.format != 1:
            raise InterfaceError("set_types: the COPY is in text format; write_row encodes text rows as they are")
        zone = self._conn.session.types.tz
        codecs = []
        for oid in type_oids:
            codec = binary.field_codec(oid, zone)
            if codec is None:
                raise InterfaceError(f"set_types: no binary COPY encoder for type OID {oid}; use the text format")
            codecs.append(codec)
        shape = tuple(codecs)
        self._binary_rows = binary.rows_writer(shape)

        def format_row(values: Sequence[Any]) -> bytes:
            return binary.encode_row(shape, values)

        self._format_row = format_row
        self._shape = ()
        self._rows_open = True
        self.write(binary.HEADER)

    def write_row(self, values: Sequence[Any]) -> None:
        """Buffer one row (text format, see :func:`format_copy_row`; binary after :meth:`set_types`).

        The buffer is sent once 64 KiB are buffered.

        Raises:
            InterfaceError: The COPY is binary without :meth:`set_types`, or already ended.
        """
        if not self._rows_open:
            self._check()
            raise InterfaceError("write_row: the COPY is in binary format; call set_types() first, or use write()")
        buffer = self._buffer
        buffer += self._format_row(values)
        if len(buffer) >= FLUSH_SIZE:
            self._flush()

    def write_rows(self, rows: Sequence[Sequence[Any]] | Iterator[Sequence[Any]]) -> None:
        """Buffer many rows (see :meth:`write_row`); cheaper per row than calling :meth:`write_row` for each.

        Raises:
            InterfaceError: The COPY is binary without :meth:`set_types`, or already ended.
        """
        if self._binary_rows is not None and self._rows_open:
            self._binary_rows(rows, self._buffer, self._flush, FLUSH_SIZE)
            return
        iterator = iter(rows)
        if self._shape is None:  # no row yet: the first one sets the shape
            for first in iterator:
                self.write_row(first)
                break
            else:
                return
        elif not self._rows_open:
            self.write_row(())  # raises why not
        # The shape's loop, with the row encoding inlined (_copy_text.rows_writer).
        rows_writer(self._shape or ())(iterator, self._buffer, self._flush, FLUSH_SIZE)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer raw COPY data in the statement's format (text, csv or binary)."""
        self._check()
        self._buffer += data
        if len(self._buffer) >= FLUSH_SIZE:
            self._flush()

    def finish(self) -> int:
        """Send what is buffered and CopyDone; wait for the server's verdict.

        Returns:
            The number of rows copied.

        Raises:
            ServerError: The server rejected the data (the connection stays usable).
        """
        self._check()
        if self._binary_rows is not None:
            self._buffer += binary.TRAILER
        data = bytes(self._buffer)
        self._buffer.clear()
        message = (p.copy_data(data) if data else b"") + p.copy_done()
        try:
            result: Result = self._conn.wait(ops.copy_in_end(self._conn.session, message))
        finally:
            self._end()
        self.rowcount = result.rowcount
        return result.rowcount

    def fail(self, message: str = "COPY aborted by the client") -> None:
        """Abort the COPY (CopyFail): nothing is copied, and the connection stays usable.

        Raises:
            ServerError: The server had already failed the COPY for another reason.
        """
        self._check()
        self._buffer.clear()
        try:
            self._conn.wait(ops.copy_in_end(self._conn.session, p.copy_fail(message[:1000])))
        except QueryCanceled:
            pass  # 57014 "COPY from stdin failed: <message>" is the expected answer
        finally:
            self._end()

    def _end(self) -> None:
        self._rows_open = False
        if self._open:
            self._open = False
            self._conn.leave_busy()

    def __enter__(self) -> CopyWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if not self._open:
            return
        if exc_type is None:
            self.finish()
            return
        try:
            self.fail(f"client error: {exc_type.__name__}: {exc}")
        except PgError:
            pass  # the block's exception is the one to report


class CopyReader:
    """An open ``COPY ... TO STDOUT``; get it from :meth:`Connection.copy_out`.

    Iterate over it for the CopyData payloads (in text format, one row each);
    :meth:`read_all` joins them.  Leaving the ``with`` block early reads and
    discards the rest, so the connection stays usable.

    Attributes:
        format: 0 for text or csv, 1 for binary (from CopyOutResponse).
        rowcount: Rows copied, once the end was read (-1 before).
    """

    def __init__(self, conn: Connection, sql: str) -> None:
        self._conn = conn
        self._chunks: deque[bytes] = deque()
        self._open = False
        self.rowcount = -1
        conn.enter_busy("COPY TO STDOUT")
        try:
            self.format: int = conn.wait(ops.copy_out_start(conn.session, sql))
        except BaseException:
            conn.leave_busy()
            raise
        self._open = True

    @property
    def closed(self) -> bool:
        """Whether the end of the COPY was read."""
        return not self._open

    def _read_more(self) -> None:
        try:
            chunks, result = self._conn.wait(ops.copy_out_next(self._conn.session))
        except BaseException:
            self._end()
            raise
        self._chunks.extend(chunks)
        if result is not None:
            self.rowcount = result.rowcount
            self._end()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunks = self._chunks
        while not chunks:
            if not self._open:
                raise StopIteration
            self._read_more()
        return chunks.popleft()

    def read_all(self) -> bytes:
        """Return everything not read yet, joined."""
        return b"".join(self)

    def close(self) -> None:
        """Read and discard the rest of the COPY; safe to call twice."""
        while self._open:
            self._chunks.clear()
            self._read_more()
        self._chunks.clear()

    def _end(self) -> None:
        if self._open:
            self._open = False
            self._conn.leave_busy()

    def __enter__(self) -> CopyReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self._conn.closed:
            self._end()
            return
        self.close()
