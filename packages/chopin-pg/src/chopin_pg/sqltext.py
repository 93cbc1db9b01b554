"""Scanning SQL text without parsing it: where a quoted string or a comment ends.

Shared by the DB-API's paramstyle compiler (:mod:`chopin_pg._paramstyle`) and chopin-orm's
migration splitter, so both skip the same lexical elements the same way (PostgreSQL's
lexical rules, section 4.1 of its manual).
"""

from __future__ import annotations

__all__ = ["skip_block_comment", "skip_quoted"]


def skip_block_comment(sql: str, i: int) -> int:
    """Index after the ``/* … */`` comment opening at ``i`` (comments nest, as in PostgreSQL).

    Args:
        sql: The SQL text.
        i: Where the comment's ``/*`` starts.

    Returns:
        The index after its closing ``*/``, or ``len(sql)`` when it never closes.
    """
    depth = 0
    n = len(sql)
    while i < n:
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def skip_quoted(sql: str, i: int, quote: str, backslash: bool) -> int:
    """Index after the closing quote of the string or quoted identifier opening at ``i``.

    Args:
        sql: The SQL text.
        i: Where the opening quote is.
        quote: ``'`` for a string, ``"`` for an identifier; doubled, it stands for itself.
        backslash: Whether a backslash escapes the next character (an ``E'…'`` string).

    Returns:
        The index after the closing quote, or ``len(sql)`` when it never closes.
    """
    i += 1
    n = len(sql)
    while i < n:
        ch = sql[i]
        if backslash and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if sql.startswith(quote, i + 1):
                i += 2  # a doubled quote stands for itself
                continue
            return i + 1
        i += 1
    return n
