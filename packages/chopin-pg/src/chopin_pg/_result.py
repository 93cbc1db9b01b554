"""What the session's operations are and what they return: the :data:`Gen` alias and :class:`Result`.

A leaf module (it imports only the protocol and the row type), so every layer
above it (session, statements, bind fast path, COPY, pipeline, connection) can
name the two without importing one another.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from . import protocol as p
from .row import Row

__all__ = ["Gen", "Result"]

#: What an operation generator yields (bytes to send, or None: "give me input") and is sent back.
Gen = Generator[bytes | None, bytes | None, Any]


class Result:
    """What one statement returned.

    Attributes:
        rows: The rows (empty for statements without a result set).
        tag: The CommandComplete tag (``""`` for an empty query).
        rowcount: The count the tag carries, or -1.
        columns: Column descriptions (empty when there was no RowDescription).
    """

    __slots__ = ("columns", "rowcount", "rows", "tag")

    def __init__(
        self, rows: list[Row], tag: str, columns: list[p.ColumnDescription], rowcount: int | None = None
    ) -> None:
        self.rows = rows
        self.tag = tag
        self.rowcount = p.parse_command_tag(tag) if rowcount is None else rowcount
        self.columns = columns
