"""The DB-API layer's query rewriting (``%s``/``%(name)s`` to ``$n``) and statement counting, without a server."""

from __future__ import annotations

import pytest
from chopin_pg._paramstyle import compile_query, has_several_statements


def test_positional_placeholders_become_dollar_numbers_and_double_percent_a_percent() -> None:
    q = compile_query("SELECT %s, '100%%', %s")
    assert q.sql == "SELECT $1, '100%', $2"
    assert list(q.values((1, 2))) == [1, 2]


def test_named_placeholders_reuse_one_number_per_name() -> None:
    q = compile_query("SELECT %(a)s, %(b)s, %(a)s")
    assert q.sql == "SELECT $1, $2, $1"
    assert q.values({"b": 2, "a": 1, "unused": 3}) == [1, 2]


def test_a_query_without_percent_is_left_as_written() -> None:
    q = compile_query("SELECT $1::int")
    assert q.sql == "SELECT $1::int" and q.values((5,)) == (5,)


@pytest.mark.parametrize(
    ("sql", "message"),
    [("SELECT 'a%'", "a literal % is written %%"), ("SELECT %s, %(a)s", "mixes"), ("SELECT %d", "expected %s")],
)
def test_bad_markup_is_refused_with_where_it_is(sql: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_query(sql)


def test_values_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValueError, match="2 placeholders, 1 values"):
        compile_query("SELECT %s, %s").values((1,))
    with pytest.raises(TypeError, match="expected a mapping"):
        compile_query("SELECT %(a)s").values((1,))
    with pytest.raises(KeyError):
        compile_query("SELECT %(a)s").values({"b": 1})


@pytest.mark.parametrize(
    ("sql", "several"),
    [
        ("SELECT 1", False),
        ("SELECT 1;", False),
        ("SELECT 1; -- done\n", False),
        ("SELECT 1; /* c; */ ;", False),
        ("SELECT 1; SELECT 2", True),
        ("SELECT 'a;b'", False),
        ("SELECT 'it''s;'", False),
        ("SELECT E'\\';'", False),
        ('SELECT 1 AS ";"', False),
        ("SELECT $$a;b$$", False),
        ("SELECT $x$a;$$;b$x$", False),
        ("SELECT 1 -- a; b\n", False),
        ("SELECT /* a /* nested; */ ; */ 1", False),
        ("CREATE TABLE t (a int); INSERT INTO t VALUES (1)", True),
    ],
)
def test_several_statements_are_told_from_one(sql: str, several: bool) -> None:
    assert has_several_statements(sql) is several
