"""chopin_pg.sqltext: where quoted strings, identifiers and comments end."""

from __future__ import annotations

import pytest
from chopin_pg.sqltext import skip_block_comment, skip_quoted


@pytest.mark.parametrize(
    ("sql", "quote", "backslash", "end"),
    [
        ("'abc' x", "'", False, 5),
        ("'it''s' x", "'", False, 7),
        ("'a\\'b' x", "'", True, 6),
        ('"col""umn" x', '"', False, 10),
        ("'never closed", "'", False, 13),
    ],
)
def test_skip_quoted(sql: str, quote: str, backslash: bool, end: int) -> None:
    assert skip_quoted(sql, 0, quote, backslash) == end


@pytest.mark.parametrize(
    ("sql", "end"),
    [("/* a */ x", 7), ("/* a /* nested */ still */ x", 26), ("/* open", 7)],
)
def test_skip_block_comment_nests(sql: str, end: int) -> None:
    assert skip_block_comment(sql, 0) == end
