"""Aggregates, group_by/having, distinct, column selection, select_for_update, reverse
relations, many-to-many and prefetch, on the real server.

The result types are pinned in ``typing_queries.py`` (checked by mypy --strict, never run).
"""
# ruff: noqa: N806  (models are classes made per test, for unique table names)

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import chopin_pg
import pytest
from chopin_orm import NotFound, OrmError, Raw, agg, column, model, related
from chopin_pg.errors import LockNotAvailable
from chopin_pg.row import Row
from orm_testing import DSN, create_table


class CountingConnection(chopin_pg.Connection):
    """A real connection that counts the statements the ORM sends through ``query``."""

    statements: list[str]

    def query(self, sql: str, params: Sequence[Any] | None = ()) -> list[Row]:
        self.statements.append(sql)
        return super().query(sql, params)


class Genre(enum.Enum):
    POEM = "poem"
    NOVEL = "novel"


@dataclass
class AuthorStats:
    author_id: int | None
    books: int
    pages: int | None


def library(conn: chopin_pg.Connection, names: Callable[[str], str]) -> tuple[Any, Any, Any, Any]:
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
        genre: Genre = column(sql_type="text", default=Genre.NOVEL)
        author_id: int | None = column(references=Author, default=None)
        id: int | None = column(primary_key=True, generated=True, default=None)

    @model(table=names("tags"))
    @dataclass
    class Tag:
        label: str
        id: int | None = column(primary_key=True, generated=True, default=None)

    @model(table=names("book_tags"))
    @dataclass
    class BookTag:
        book_id: int = column(primary_key=True, references=Book)
        tag_id: int = column(primary_key=True, references=Tag)

    for m in (Author, Book, Tag, BookTag):
        create_table(conn, m)
    ann, bob, cid = Author("Ann"), Author("Bob"), Author("Cid")
    for a in (ann, bob, cid):
        a.insert(conn)
    books = [
        Book("alpha", 100, Genre.POEM, ann.id),
        Book("beta", 250, Genre.NOVEL, ann.id),
        Book("gamma", 50, Genre.POEM, bob.id),
        Book("delta", 400, Genre.NOVEL, None),
    ]
    Book.insert_many(conn, books, returning=True)
    red, blue = Tag("red"), Tag("blue")
    red.insert(conn)
    blue.insert(conn)
    BookTag.insert_many(
        conn, [BookTag(books[0].id, red.id), BookTag(books[0].id, blue.id), BookTag(books[2].id, red.id)]
    )
    return Author, Book, Tag, BookTag


def test_aggregates_with_group_by_having_and_ordering(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Author, Book, _, _ = library(conn, names)
    assert Book.query().select(agg.count()).one(conn) == (4,)
    totals = Book.query().select(
        agg.count(), agg.sum(Book.pages), agg.avg(Book.pages), agg.min(Book.pages), agg.max(Book.pages)
    )
    assert totals.one(conn) == (4, 800, 200.0, 50, 400)
    assert Book.query().filter(Book.pages > 1000).select(agg.sum(Book.pages), agg.count()).one(conn) == (None, 0)

    per_author = (
        Book.query()
        .select(Book.author_id, agg.count(), agg.sum(Book.pages))
        .group_by(Book.author_id)
        .order_by(agg.desc(agg.count()), Book.author_id.asc(nulls="LAST"))
    )
    ann, bob = Author.query().order_by(Author.id).limit(2).all(conn)
    assert per_author.all(conn) == [(ann.id, 2, 350), (bob.id, 1, 50), (None, 1, 400)]
    assert per_author.having(agg.count() > 1).all(conn) == [(ann.id, 2, 350)]
    assert per_author.having("sum(pages) < $1", 100).all(conn) == [(bob.id, 1, 50)]
    assert per_author.into(AuthorStats).first(conn) == AuthorStats(ann.id, 2, 350)

    by_name = (
        Book.query()
        .join(Author)
        .select(Author.name, agg.count(Book.id, distinct=True))
        .group_by(Author.name)
        .order_by(Author.name)
    )
    assert by_name.all(conn) == [("Ann", 2), ("Bob", 1)]
    # Converters run on selected values: an Enum column (stored as text) comes back as the Enum.
    genres = Book.query().select(Book.genre, agg.min(Book.genre)).group_by(Book.genre).order_by(Book.genre).all(conn)
    assert genres == [(Genre.NOVEL, Genre.NOVEL), (Genre.POEM, Genre.POEM)]


def test_distinct_and_column_selection(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Author, Book, _, _ = library(conn, names)
    writers = Author.query().join(Book).distinct().order_by(Author.name)
    assert [a.name for a in writers.all(conn)] == ["Ann", "Bob"]
    assert writers.count(conn) == 2
    assert Author.query().join(Book).count(conn) == 3  # without distinct: one row per book
    assert Book.query().select(Book.genre).distinct().order_by(Book.genre).all(conn) == [(Genre.NOVEL,), (Genre.POEM,)]
    assert Book.query().select(Book.title, Raw("pages * $1", 2)).filter(Book.pages < 60).all(conn) == [("gamma", 100)]
    with pytest.raises(NotFound):
        Book.query().filter(Book.pages > 1000).select(Book.title).one(conn)
    with pytest.raises(OrmError, match="select"):
        Book.query().select("title")


def test_select_for_update_nowait_and_skip_locked(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    _, Book, _, _ = library(conn, names)
    with conn.transaction():
        locked = Book.query().filter(Book.pages < 200).order_by(Book.id).select_for_update().all(conn)
        assert [b.title for b in locked] == ["alpha", "gamma"]
        seen: dict[str, Any] = {}

        def other() -> None:  # another session while the rows are locked
            with chopin_pg.connect(DSN) as c2, c2.transaction():
                free = Book.query().order_by(Book.id).select_for_update(skip_locked=True).all(c2)
                seen["free"] = [b.title for b in free]
                try:
                    Book.query().filter(Book.title == "alpha").select_for_update(nowait=True).all(c2)
                except LockNotAvailable as exc:
                    seen["nowait"] = exc.sqlstate

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=30)
    assert seen == {"free": ["beta", "delta"], "nowait": "55P03"}
    assert (
        Book.query()
        .select_for_update(skip_locked=True)
        .sql()[0]
        .endswith('FOR UPDATE OF "' + Book.__chopin_table__.name + '" SKIP LOCKED')
    )
    with pytest.raises(OrmError, match="exclude"):
        Book.query().select_for_update(nowait=True, skip_locked=True)


def test_reverse_relations_and_many_to_many(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Author, Book, Tag, BookTag = library(conn, names)
    ann = Author.query().filter(Author.name == "Ann").one(conn)
    assert [b.title for b in related(ann, Book).order_by(Book.title).all(conn)] == ["alpha", "beta"]
    assert related(ann, Book).filter(Book.pages > 200).count(conn) == 1
    alpha = Book.query().filter(Book.title == "alpha").one(conn)
    assert [t.label for t in related(alpha, Tag, through=BookTag).order_by(Tag.label).all(conn)] == ["blue", "red"]
    red = Tag.query().filter(Tag.label == "red").one(conn)
    assert [b.title for b in related(red, Book, through=BookTag).order_by(Book.title).all(conn)] == ["alpha", "gamma"]


def test_prefetch_loads_each_relation_in_one_statement(names: Callable[[str], str]) -> None:
    with CountingConnection.connect(DSN) as conn:
        conn.statements = []
        Author, Book, Tag, BookTag = library(conn, names)
        for _ in range(20):  # more authors than a per-row loader could hide
            Author("Nobody").insert(conn)
        conn.statements.clear()
        rows = Author.query().order_by(Author.id).prefetch(Book.query().order_by(Book.title)).all(conn)
        assert len(conn.statements) == 2, conn.statements  # the authors, then every book at once
        assert [(a.name, [b.title for b in books]) for a, books in rows[:3]] == [
            ("Ann", ["alpha", "beta"]),
            ("Bob", ["gamma"]),
            ("Cid", []),
        ]
        assert all(books == [] for _, books in rows[3:])

        conn.statements.clear()
        tagged = Book.query().order_by(Book.title).prefetch(Tag.query().order_by(Tag.label), through=BookTag)
        tagged = tagged.prefetch(BookTag)  # a second relation: another list, another statement
        result = tagged.all(conn)
        assert len(conn.statements) == 3, conn.statements
        assert [(b.title, [t.label for t in tags], len(links)) for b, tags, links in result] == [
            ("alpha", ["blue", "red"], 2),
            ("beta", [], 0),
            ("delta", [], 0),
            ("gamma", ["red"], 1),
        ]
        conn.statements.clear()
        assert Author.query().filter(Author.id < 0).prefetch(Book).all(conn) == []
        assert len(conn.statements) == 1  # no parents: no second statement

        # Past PREFETCH_BATCH parent keys, one statement per batch (bounded parameters), same result.
        authors = Author.query().order_by(Author.id).all(conn)
        conn.statements.clear()
        loader = Author.query().prefetch(Book.query().order_by(Book.title))._prefetch[0]
        assert loader.load(conn, authors, batch=2)[:3] == [b for _, b in rows[:3]]
        assert len(conn.statements) == (len(authors) + 1) // 2

        with_author = Book.query().select_related(Author).filter(Book.title == "alpha").prefetch(BookTag).all(conn)
        assert [(b.title, a.name, len(links)) for (b, a), links in with_author] == [("alpha", "Ann", 2)]


def test_prefetch_and_related_follow_a_self_referencing_foreign_key(
    conn: chopin_pg.Connection, names: Callable[[str], str]
) -> None:
    table = names("nodes")

    @model(table=table)
    @dataclass
    class Node:
        id: int = column(primary_key=True)
        name: str = ""
        parent_id: int | None = column(references=f"{table}.id", default=None)

    create_table(conn, Node)
    Node.insert_many(conn, [Node(1, "root"), Node(2, "a", 1), Node(3, "b", 1), Node(4, "a1", 2)])
    tree = Node.query().order_by(Node.id).prefetch(Node.query().order_by(Node.id)).all(conn)
    assert [(n.name, [c.name for c in kids]) for n, kids in tree] == [
        ("root", ["a", "b"]),
        ("a", ["a1"]),
        ("b", []),
        ("a1", []),
    ]
    root = Node.get(conn, 1)
    assert [n.name for n in related(root, Node).order_by(Node.id).all(conn)] == ["a", "b"]
