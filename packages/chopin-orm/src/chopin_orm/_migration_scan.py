"""Find transaction-control statements (BEGIN, COMMIT, ...) in a migration file, without a database.

A migration runs inside the transaction the ``Migrator`` opens.  A ``COMMIT`` in the file
would commit part of it and leave the rest, and the record, outside any transaction, so
such files are refused before anything runs.  The scanner splits the text into statements
the way the server's simple-query parser does for this purpose: semicolons count only
outside quoted strings (``'..'``, ``E'..'`` with backslash escapes), quoted identifiers,
dollar quotes (``$tag$..$tag$``), ``--`` and nested ``/* */`` comments, and outside the
``BEGIN ATOMIC ... END`` body of a SQL-standard function.
"""

from __future__ import annotations

import re

__all__ = ["transaction_control"]

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# Statement-opening words that end, start or abandon the surrounding transaction.
_CONTROL = {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT"}


def _skip_quoted(sql: str, i: int, quote: str, backslash: bool) -> int:
    """Index after the closing quote of the string or identifier opening at ``i``."""
    i += 1
    n = len(sql)
    while i < n:
        ch = sql[i]
        if backslash and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and sql[i + 1] == quote:  # doubled quote: an escaped one
                i += 2
                continue
            return i + 1
        i += 1
    return n


def _skip_block_comment(sql: str, i: int) -> int:
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


def _statement_words(sql: str) -> list[tuple[list[str], int]]:
    """Each statement's first two words (upper case) and the offset of its first word."""
    out: list[tuple[list[str], int]] = []
    words: list[str] = []
    start = -1
    atomic = False  # inside BEGIN ATOMIC ... END: semicolons do not end the statement
    at_sub_start = False  # at the start of a statement of an atomic body
    prev_word = ""
    count = 0  # words in the current statement
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in " \t\r\n\f":
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif ch == "'":
            backslash = i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            i = _skip_quoted(sql, i, "'", backslash)
            at_sub_start = False
        elif ch == '"':
            i = _skip_quoted(sql, i, '"', False)
            at_sub_start = False
        elif ch == "$" and (m := _DOLLAR_TAG.match(sql, i)) is not None and not (i > 0 and sql[i - 1].isalnum()):
            close = sql.find(m.group(0), m.end())
            i = n if close < 0 else close + len(m.group(0))
            at_sub_start = False
        elif ch == ";":
            if atomic:
                at_sub_start = True
            else:
                if words:
                    out.append((words, start))
                words, start, count = [], -1, 0
            i += 1
        elif (m := _WORD.match(sql, i)) is not None:
            word = m.group(0).upper()
            if start < 0:
                start = i
            count += 1
            if len(words) < 2:
                words.append(word)
            if atomic and at_sub_start and word == "END":
                atomic = at_sub_start = False
            elif word == "ATOMIC" and prev_word == "BEGIN" and count > 2:
                atomic = at_sub_start = True  # the function body starts
            else:
                at_sub_start = False
            prev_word = word
            i = m.end()
        else:
            if start < 0:
                start = i
            at_sub_start = False
            i += 1
    if words:
        out.append((words, start))
    return out


def transaction_control(sql: str) -> tuple[str, int] | None:
    """The first statement that controls the transaction, as ``(keyword, line)``, or None.

    ``ROLLBACK TO [SAVEPOINT]`` is allowed (it stays inside the transaction).
    """
    for words, start in _statement_words(sql):
        first = words[0]
        if first not in _CONTROL:
            continue
        if first == "ROLLBACK" and len(words) > 1 and words[1] == "TO":
            continue
        if first == "START" and (len(words) < 2 or words[1] != "TRANSACTION"):
            continue
        return first, sql[:start].count("\n") + 1
    return None
