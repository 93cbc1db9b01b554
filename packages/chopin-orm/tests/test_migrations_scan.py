"""The statement scanner (no database): splitting, transaction control, the no-transaction directive."""

from __future__ import annotations

import pytest
from chopin_orm._migration_scan import split_statements, transaction_control, wants_no_transaction


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;", ("BEGIN", 1)),
        ("CREATE TABLE a (x int);\n\ncommit;", ("COMMIT", 3)),
        ("CREATE TABLE a (x int); END", ("END", 1)),
        ("start transaction; SELECT 1", ("START", 1)),
        ("ROLLBACK;", ("ROLLBACK", 1)),
        ("abort", ("ABORT", 1)),
        ("SELECT 1;\n  /* note */ COMMIT", ("COMMIT", 2)),
        ("SELECT $1 FROM x; COMMIT;", ("COMMIT", 1)),
        ("CREATE FUNCTION f() RETURNS int AS $b$ BEGIN\n COMMIT; END; $b$ LANGUAGE plpgsql;\nCOMMIT;", ("COMMIT", 3)),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\nEND;", ("END", 2)),
        ("SELECT E'it\\\\'; COMMIT", ("COMMIT", 1)),  # E'it\\' ends after the escaped backslash
    ],
)
def test_transaction_control_is_found_with_its_line(sql: str, found: tuple[str, int]) -> None:
    assert transaction_control(sql) == found


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE a (x int); INSERT INTO a VALUES (1);",
        "SAVEPOINT s; ROLLBACK TO SAVEPOINT s; ROLLBACK TO s; RELEASE s;",
        "SELECT 'COMMIT;'; SELECT 'it''s; END';",
        'SELECT "end" FROM x; SELECT "a""; COMMIT" FROM y;',
        "SELECT E'it\\'s; COMMIT';",
        "-- COMMIT;\n/* BEGIN; /* nested; */ COMMIT; */ SELECT 1;",
        "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;",
        "CREATE PROCEDURE p() LANGUAGE plpgsql AS $body$ BEGIN COMMIT; END $body$;",
        "DO $$ BEGIN PERFORM 1; END $$;",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END;",
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC END; SELECT 2;",
        "SELECT x$1 FROM t; SELECT 1 AS begin;",
        "",
        "-- only a comment",
        "SELECT 'unterminated",
    ],
)
def test_everything_else_is_left_alone(sql: str) -> None:
    assert transaction_control(sql) is None


def test_split_statements_gives_each_statement_with_its_first_line() -> None:
    sql = (
        "-- header\nCREATE TABLE a (x text DEFAULT ';');\n\n"
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\nEND;\n"
        "/* trailing */ SELECT 2"
    )
    got = [(s.line, s.text, s.words) for s in split_statements(sql)]
    assert got == [
        (2, "CREATE TABLE a (x text DEFAULT ';')", ("CREATE", "TABLE")),
        (4, "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", ("CREATE", "FUNCTION")),
        (5, "CREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\nEND", ("CREATE", "FUNCTION")),
        (9, "SELECT 2", ("SELECT",)),
    ]
    assert split_statements(" ;; -- nothing\n") == []


@pytest.mark.parametrize(
    ("sql", "wanted"),
    [
        ("-- chopin:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);", True),
        ("\n-- add an index\n--   CHOPIN:NO-TRANSACTION  \nCREATE INDEX CONCURRENTLY i ON t (x);", True),
        ("CREATE INDEX i ON t (x);\n-- chopin:no-transaction", False),  # only before the first statement
        ("-- chopin:no-transactions\nSELECT 1", False),
        ("/* chopin:no-transaction */ SELECT 1", False),
        ("", False),
    ],
)
def test_the_no_transaction_directive(sql: str, wanted: bool) -> None:
    assert wants_no_transaction(sql) is wanted
