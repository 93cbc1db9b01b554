"""Query: filters, ordering, paging, joins, select_related, terminal statements and iter() on the real server."""
# ruff: noqa: N806  (models are classes made per test, for unique table names)

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import chopin_pg
import pytest
from chopin_orm import MultipleRows, NotFound, OrmError, Query, Raw, col, column, model
from orm_testing import create_table


def models(names: Callable[[str], str]) -> tuple[Any, Any]:
    @model(table=names("authors"))
    @dataclass
    class Author:
        name: str
        id: int | None = column(primary_key=True, generated=True, default=None)

    @model(table=names("books"))
    @dataclass
    class Book:
        title: str
        pages: int
        author_id: int | None = column(references=Author, on_delete="SET NULL", default=None)
        id: int | None = column(primary_key=True, generated=True, default=None)

    return Author, Book


@pytest.fixture
def library(conn: chopin_pg.Connection, names: Callable[[str], str]) -> tuple[Any, Any]:
    Author, Book = models(names)
    create_table(conn, Author)
    create_table(conn, Book)
    ann, bob = Author("Ann"), Author("Bob")
    ann.insert(conn)
    bob.insert(conn)
    Book.insert_many(
        conn,
        [
            Book("alpha", 100, ann.id),
            Book("beta", 250, ann.id),
            Book("gamma", 50, bob.id),
            Book("delta", 400, None),
            Book("o'neil; drop", 10, bob.id),
        ],
    )
    return Author, Book


def titles(rows: list[Any]) -> list[str]:
    return [r.title for r in rows]


def test_filters_expressions_and_raw(conn: chopin_pg.Connection, library: tuple[Any, Any]) -> None:
    _, Book = library
    q = Book.query()
    assert titles(q.filter(Book.pages < 100).order_by(Book.pages).all(conn)) == ["o'neil; drop", "gamma"]
    assert titles(q.filter("pages >= $1 AND pages <= $2", 100, 250).order_by(Book.title).all(conn)) == [
        "alpha",
        "beta",
    ]
    both = q.filter((Book.pages > 300) | col(Book.title).like("al%")).order_by(Book.title.desc())
    assert titles(both.all(conn)) == ["delta", "alpha"]
    assert titles(q.filter(~(Book.pages < 300)).all(conn)) == ["delta"]
    assert titles(q.filter(Book.author_id.is_null()).all(conn)) == ["delta"]
    assert titles(q.filter(Book.title == "o'neil; drop").all(conn)) == ["o'neil; drop"]
    assert titles(q.filter(Book.title.in_(["beta", "gamma", "zzz"])).order_by(Book.title).all(conn)) == [
        "beta",
        "gamma",
    ]
    assert q.filter(Book.title.in_([])).all(conn) == []
    assert titles(q.filter(Raw("length(title) = $1", 5)).filter(Book.pages > 60).order_by("title DESC").all(conn)) == [
        "delta",
        "alpha",
    ]
    with pytest.raises(OrmError, match="got bool"):
        q.filter(True)


def test_order_limit_offset_first_one_count_exists(conn: chopin_pg.Connection, library: tuple[Any, Any]) -> None:
    _, Book = library
    by_pages = Book.query().order_by(Book.pages.desc())
    assert titles(by_pages.limit(2).all(conn)) == ["delta", "beta"]
    assert titles(by_pages.offset(1).limit(2).all(conn)) == ["beta", "alpha"]
    assert by_pages.first(conn).title == "delta"
    assert Book.query().filter(Book.pages > 10_000).first(conn) is None
    assert Book.query().filter(Book.title == "beta").one(conn).pages == 250
    with pytest.raises(NotFound):
        Book.query().filter(Book.title == "none").one(conn)
    with pytest.raises(MultipleRows):
        Book.query().one(conn)
    assert Book.query().count(conn) == 5
    assert Book.query().filter(Book.pages >= 100).count(conn) == 3
    assert by_pages.limit(2).count(conn) == 2
    assert Book.query().filter(Book.pages > 300).exists(conn)
    assert not Book.query().filter(Book.pages > 3000).exists(conn)
    with pytest.raises(OrmError, match="non-negative"):
        Book.query().limit(-1)


def test_update_and_delete(conn: chopin_pg.Connection, library: tuple[Any, Any]) -> None:
    _, Book = library
    assert Book.query().filter(Book.pages < 100).update(conn, pages=Raw("pages + $1", 1000)) == 2
    assert sorted(b.pages for b in Book.query().filter(Book.pages > 1000).all(conn)) == [1010, 1050]
    assert Book.query().filter(Book.title == "alpha").update(conn, title="ALPHA", author_id=None) == 1
    assert Book.get(conn, Book.query().filter(Book.title == "ALPHA").one(conn).id).author_id is None
    # limit/order go through a key sub-select
    assert Book.query().order_by(Book.pages).limit(1).delete(conn) == 1
    assert Book.query().count(conn) == 4
    assert Book.query().filter(Book.pages > 1000).delete(conn) == 2
    assert titles(Book.query().order_by(Book.title).all(conn)) == ["beta", "delta"]  # ALPHA had the fewest pages
    with pytest.raises(OrmError, match="at least one"):
        Book.query().update(conn)


def test_join_and_select_related(conn: chopin_pg.Connection, library: tuple[Any, Any]) -> None:
    Author, Book = library
    anns = Book.query().join(Author).filter(Author.name == "Ann").order_by(Book.title).all(conn)
    assert titles(anns) == ["alpha", "beta"]
    reverse = Author.query().join(Book).filter(Book.pages > 200).all(conn)
    assert [a.name for a in reverse] == ["Ann"]
    pairs = Book.query().select_related(Author).order_by(Book.title).all(conn)
    assert [(b.title, a.name if a else None) for b, a in pairs] == [
        ("alpha", "Ann"),
        ("beta", "Ann"),
        ("delta", None),
        ("gamma", "Bob"),
        ("o'neil; drop", "Bob"),
    ]
    assert all(isinstance(a, Author) for _, a in pairs if a is not None)
    with pytest.raises(OrmError, match="foreign key"):
        Author.query().select_related(Book)
    assert Book.query().join(Author).filter(Author.name == "Bob").update(conn, pages=1) == 2
    assert Book.query().filter(Book.pages == 1).count(conn) == 2


def test_iter_streams_with_a_server_side_cursor(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    @model(table=names("nums"))
    @dataclass
    class Num:
        n: int = column(primary_key=True)

    create_table(conn, Num)
    Num.insert_many(conn, [Num(i) for i in range(1, 2501)])
    seen = [x.n for x in Num.query().filter(Num.n > 500).order_by(Num.n).iter(conn, batch_size=300)]
    assert seen == list(range(501, 2501))
    assert conn.transaction_status == "I"  # the iteration's own transaction ended
    # stopping early closes the cursor and ends the transaction
    it = Num.query().order_by(Num.n).iter(conn, batch_size=100)
    assert [next(it).n for _ in range(3)] == [1, 2, 3]
    it.close()
    assert conn.transaction_status == "I"
    # inside a caller's transaction the cursor lives in it and the transaction stays open
    with conn.transaction():
        assert sum(1 for _ in Num.query().iter(conn, batch_size=1000)) == 2500
        assert conn.transaction_status == "T"
        assert conn.query("SELECT name FROM pg_cursors WHERE name LIKE 'chopin_orm%'") == []
    # the same query again reuses the cached FETCH statement
    assert sum(1 for _ in Num.query().iter(conn, batch_size=1000)) == 2500


def test_sql_is_parameterised(library: tuple[Any, Any]) -> None:
    _, Book = library
    sql, params = Query(Book).filter(Book.title == "x'y").order_by(Book.id).limit(3).sql()
    assert "x'y" not in sql and params == ["x'y", 3]
    assert sql.endswith('ORDER BY "' + Book.__chopin_table__.name + '"."id" ASC LIMIT $2')


def test_self_join_is_refused_clearly(library: tuple[Any, Any]) -> None:
    Author, Book = library
    with pytest.raises(OrmError, match="self-joins"):
        Book.query().join(Book, on=Book.id == Book.author_id)
    with pytest.raises(OrmError, match="self-joins"):
        Book.query().select_related(Author, Author)


def test_iter_and_all_on_a_pool(conn: chopin_pg.Connection, library: tuple[Any, Any]) -> None:
    from orm_testing import DSN

    _, Book = library
    with chopin_pg.PgPool.connect(DSN, 1) as pool:
        it = Book.query().order_by(Book.title).iter(pool, batch_size=2)
        assert next(it).title == "alpha"
        assert pool.stats().active == 1  # the iterator holds the connection
        assert [b.title for b in it] == ["beta", "delta", "gamma", "o'neil; drop"]
        assert pool.stats().active == 0
        assert len(Book.query().all(pool)) == 5


def test_nested_iteration_of_the_same_query(conn: chopin_pg.Connection, library: tuple[Any, Any]) -> None:
    _, Book = library
    q = Book.query().order_by(Book.title)
    pairs = [(a.title, b.title) for a in q.iter(conn, batch_size=2) for b in q.iter(conn, batch_size=2)]
    assert len(pairs) == 25 and pairs[0] == ("alpha", "alpha") and pairs[-1] == ("o'neil; drop", "o'neil; drop")
    assert conn.transaction_status == "I"
