"""Query text for the DB-API layer: ``format``/``pyformat`` placeholders to ``$n``, and statement counting.

Pure functions on strings, no I/O.  The rules are psycopg's: placeholders are
recognised only when parameters are given; then every ``%`` is markup, so a
literal percent sign is written ``%%`` (inside string literals too).  ``%s``
takes the next value of a sequence, ``%(name)s`` the value of a mapping (the
same name used twice is one ``$n``); ``%b`` and ``%t`` are accepted as ``%s``.
A query holding no ``%`` at all is sent as written, so native ``$1`` works.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .sqltext import skip_block_comment, skip_quoted

__all__ = ["CompiledQuery", "compile_query", "has_several_statements"]

_PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?(?P<conv>.|$)", re.DOTALL)


class CompiledQuery:
    """A query rewritten to ``$n`` placeholders, and how to order its values.

    Attributes:
        sql: The query with ``$1..$n``.
        names: For ``%(name)s`` queries, the name of each ``$n``; ``None`` otherwise.
        count: How many ``%s`` the query holds (``-1`` when it held no ``%`` and was left as written).
    """

    __slots__ = ("count", "names", "sql")

    def __init__(self, sql: str, names: tuple[str, ...] | None, count: int) -> None:
        self.sql = sql
        self.names = names
        self.count = count

    def values(self, params: Sequence[Any] | Mapping[str, Any]) -> Sequence[Any]:
        """Return the values in ``$n`` order.

        Raises:
            TypeError: A mapping for ``%s`` placeholders, or a sequence for ``%(name)s`` ones.
            KeyError: A ``%(name)s`` has no value in the mapping.
            ValueError: The number of values differs from the number of ``%s``.
        """
        if self.names is not None:
            if not isinstance(params, Mapping):
                raise TypeError(
                    f"the query uses %(name)s placeholders: expected a mapping, got {type(params).__name__}"
                )
            return [params[name] for name in self.names]
        if isinstance(params, Mapping):
            if self.count <= 0:
                return ()  # psycopg accepts a mapping for a query without placeholders
            raise TypeError("the query uses %s placeholders: expected a sequence, got a mapping")
        if self.count >= 0 and len(params) != self.count:
            raise ValueError(f"the query has {self.count} placeholders, {len(params)} values given")
        return params


def compile_query(sql: str) -> CompiledQuery:
    """Rewrite ``%s``/``%(name)s`` to ``$n`` and ``%%`` to ``%``.

    Raises:
        ValueError: A ``%`` that starts no placeholder (write ``%%``), or both styles in one query.
    """
    if "%" not in sql:
        return CompiledQuery(sql, None, -1)
    parts: list[str] = []
    names: dict[str, int] = {}
    positional = 0
    start = 0
    for match in _PLACEHOLDER.finditer(sql):
        parts.append(sql[start : match.start()])
        start = match.end()
        name, conv = match.group("name"), match.group("conv")
        if name is None and conv == "%":
            parts.append("%")
            continue
        if conv not in ("s", "b", "t"):
            where = match.start()
            raise ValueError(
                f"at character {where + 1}: expected %s, %(name)s or %% (a literal % is written %%), "
                f"got {sql[where : where + 10]!r}"
            )
        if name is None:
            positional += 1
            parts.append(f"${positional}")
        else:
            index = names.setdefault(name, len(names) + 1)
            parts.append(f"${index}")
        if positional and names:
            raise ValueError("the query mixes %s and %(name)s placeholders")
    parts.append(sql[start:])
    text = "".join(parts)
    if names:
        return CompiledQuery(text, tuple(names), 0)
    return CompiledQuery(text, None, positional)


def has_several_statements(sql: str) -> bool:
    """Whether ``sql`` holds more than one statement (a ``;`` outside quotes and comments, then more SQL).

    Quotes are ``'...'`` (``''`` inside; backslash escapes after ``E``), ``"..."``,
    dollar quotes ``$tag$...$tag$``; comments are ``--`` to the end of the line and
    nested ``/* */``.
    """
    if ";" not in sql:
        return False
    i, n = 0, len(sql)
    seen_end = False  # a ';' was passed: any further SQL is a second statement
    while i < n:
        ch = sql[i]
        if ch in " \t\r\n\f;":
            seen_end = seen_end or ch == ";"
            i += 1
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if sql.startswith("/*", i):
            i = skip_block_comment(sql, i)
            continue
        if seen_end:
            return True
        if ch == "'":
            backslash = i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            i = skip_quoted(sql, i, "'", backslash)
        elif ch == '"':
            i = skip_quoted(sql, i, '"', False)
        elif ch == "$":
            i = _skip_dollar(sql, i)
        else:
            i += 1
    return False


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")


def _skip_dollar(sql: str, i: int) -> int:
    match = _DOLLAR_TAG.match(sql, i)
    if match is None or (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
        return i + 1  # a parameter $1 or part of an identifier
    tag = match.group(0)
    end = sql.find(tag, match.end())
    return len(sql) if end < 0 else end + len(tag)
