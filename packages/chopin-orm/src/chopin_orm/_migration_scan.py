"""Split a migration file into statements and find the ones that control the transaction.

No database here.

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
from dataclasses import dataclass

from chopin_pg.sqltext import skip_block_comment, skip_quoted

__all__ = ["NO_TRANSACTION_DIRECTIVE", "Statement", "split_statements", "transaction_control", "wants_no_transaction"]

#: A comment line, before the first statement, asking to run the file outside a transaction.
NO_TRANSACTION_DIRECTIVE = "-- chopin:no-transaction"

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# Statement-opening words that end, start or abandon the surrounding transaction.
_CONTROL = {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT"}


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a file: its text (without the ``;``), first line, and first two words."""

    text: str
    line: int
    words: tuple[str, ...]


def split_statements(sql: str) -> list[Statement]:
    """The statements of ``sql``, split at the semicolons the server would split at."""
    out: list[Statement] = []
    words: list[str] = []
    start = -1  # offset of the statement's first token, -1 before it
    atomic = False  # inside BEGIN ATOMIC ... END: semicolons do not end the statement
    at_sub_start = False  # at the start of a statement of an atomic body
    prev_word = ""
    count = 0  # words in the current statement

    def finish(end: int) -> None:
        if start >= 0:
            out.append(Statement(sql[start:end].strip(), sql[:start].count("\n") + 1, tuple(words)))

    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in " \t\r\n\f":
            i += 1
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if sql.startswith("/*", i):
            i = skip_block_comment(sql, i)
            continue
        if ch == ";" and not atomic:
            finish(i)
            words, start, count = [], -1, 0
            i += 1
            continue
        if start < 0:
            start = i
        if ch == "'":
            backslash = i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            i = skip_quoted(sql, i, "'", backslash)
            at_sub_start = False
        elif ch == '"':
            i = skip_quoted(sql, i, '"', False)
            at_sub_start = False
        elif ch == "$" and (m := _DOLLAR_TAG.match(sql, i)) is not None and not (i > 0 and sql[i - 1].isalnum()):
            close = sql.find(m.group(0), m.end())
            i = n if close < 0 else close + len(m.group(0))
            at_sub_start = False
        elif ch == ";":  # inside an atomic body
            at_sub_start = True
            i += 1
        elif (m := _WORD.match(sql, i)) is not None:
            word = m.group(0).upper()
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
            at_sub_start = False
            i += 1
    finish(n)
    return out


def transaction_control(sql: str) -> tuple[str, int] | None:
    """The first statement that controls the transaction, as ``(keyword, line)``, or None.

    ``ROLLBACK TO [SAVEPOINT]`` is allowed (it stays inside the transaction).
    """
    for statement in split_statements(sql):
        words = statement.words
        if not words or words[0] not in _CONTROL:
            continue
        if words[0] == "ROLLBACK" and len(words) > 1 and words[1] == "TO":
            continue
        if words[0] == "START" and (len(words) < 2 or words[1] != "TRANSACTION"):
            continue
        return words[0], statement.line
    return None


def wants_no_transaction(sql: str) -> bool:
    """Whether the comment lines opening ``sql`` include ``-- chopin:no-transaction``."""
    for line in sql.splitlines():
        text = line.strip()
        if not text:
            continue
        if not text.startswith("--"):
            return False
        if " ".join(text[2:].split()).lower() == NO_TRANSACTION_DIRECTIVE[3:]:
            return True
    return False
