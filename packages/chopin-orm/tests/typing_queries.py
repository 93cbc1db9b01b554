"""The query builder's result types, checked by mypy --strict and never run (not a test module).

Listed in the root pyproject's ``[tool.mypy] files``, so the typecheck run (``tox -e typecheck``,
or ``mypy`` at the root) checks it with the packages; alone: ``mypy packages/chopin-orm/tests/typing_queries.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import assert_type

import chopin_pg
from chopin_orm import (
    Model,
    Query,
    RowStream,
    Transaction,
    aget,
    aget_many,
    aget_or_none,
    agg,
    ainsert_many,
    atransaction,
    aupdate_many,
    column,
    get,
    get_many,
    get_or_none,
    insert_many,
    model,
    related,
    transaction,
    update_many,
)


@model(table="typing_authors")
@dataclass
class Author:
    name: str
    id: int | None = column(primary_key=True, generated=True, default=None)


@model(table="typing_books")
@dataclass
class Book:
    title: str = column()
    pages: int = column()
    author_id: int | None = column(references=Author, default=None)
    id: int | None = column(primary_key=True, generated=True, default=None)


@model(table="typing_tags")
@dataclass
class Tag:
    label: str
    id: int | None = column(primary_key=True, generated=True, default=None)


@model(table="typing_book_tags")
@dataclass
class BookTag:
    book_id: int = column(primary_key=True, references=Book)
    tag_id: int = column(primary_key=True, references=Tag)


@dataclass
class AuthorStats:
    author_id: int | None
    books: int
    pages: int | None


def check(conn: chopin_pg.Connection, ann: Author) -> None:
    per_author = Query(Book).select(Book.author_id, agg.count(), agg.sum(Book.pages)).group_by(Book.author_id)
    assert_type(per_author.having(agg.count() > 1).all(conn), list[tuple[int | None, int, int | None]])
    assert_type(per_author.into(AuthorStats).all(conn), list[AuthorStats])
    assert_type(Query(Book).select(agg.avg(Book.pages)).one(conn), tuple[float | None])
    assert_type(Query(Book).select(agg.max(Book.title)).first(conn), tuple[str | None] | None)
    assert_type(Query(Book).select(Book.title).distinct().all(conn), list[tuple[str]])
    assert_type(Query(Book).select_for_update(skip_locked=True).all(conn), list[Book])
    assert_type(related(ann, Book), Query[Book])
    assert_type(Query(Author).prefetch(Book).all(conn), list[tuple[Author, list[Book]]])
    both = Query(Book).prefetch(Tag, through=BookTag).prefetch(BookTag)
    assert_type(both.all(conn), list[tuple[Book, list[Tag], list[BookTag]]])


@model(table="typing_shelves")
@dataclass
class Shelf(Model):
    label: str
    id: int | None = column(primary_key=True, generated=True, default=None)


def check_blocking(conn: chopin_pg.Connection, pool: chopin_pg.PgPool) -> None:
    assert_type(Query(Book).filter(Book.pages > 100).order_by(Book.title).all(pool), list[Book])
    assert_type(Query(Book).first(conn), Book | None)
    assert_type(Query(Book).one(conn), Book)
    assert_type(Query(Book).count(conn), int)
    assert_type(Query(Book).exists(conn), bool)
    assert_type(Query(Book).iter(pool, batch_size=500), Iterator[Book])
    assert_type(Query(Book).select(Book.title).iter(conn), Iterator[tuple[str]])
    assert_type(Query(Book).select(Book.title, Book.pages).one(conn), tuple[str, int])
    assert_type(get(Book, conn, 1), Book)
    assert_type(get_or_none(Book, conn, 1), Book | None)
    assert_type(get_many(Book, conn, [1, 2]), list[Book | None])
    assert_type(insert_many(Book, conn, [Book("t", 1)]), int)
    assert_type(update_many(Book, conn, [Book("t", 1)]), int)
    assert_type(Shelf.get(conn, 1), Shelf)
    assert_type(Shelf.get_many(conn, [1]), list[Shelf | None])
    assert_type(Shelf.query(), Query[Shelf])
    with transaction(conn) as tx:
        assert_type(tx, Transaction)
        assert_type(Query(Book).all(tx), list[Book])


async def check_async(
    pool: chopin_pg.AsyncPool, aconn: chopin_pg.AsyncConnection, blocking: chopin_pg.Connection, ann: Author
) -> None:
    assert_type(await Query(Book).filter(Book.pages > 100).aall(pool), list[Book])
    assert_type(await Query(Book).afirst(aconn), Book | None)
    assert_type(await Query(Book).aone(pool), Book)
    assert_type(await Query(Book).acount(pool), int)
    assert_type(await Query(Book).aexists(pool), bool)
    assert_type(await Query(Book).filter(Book.pages < 0).aupdate(pool, pages=0), int)
    assert_type(await Query(Book).filter(Book.pages < 0).adelete(pool), int)
    assert_type(await related(ann, Book).aall(pool), list[Book])
    assert_type(await Query(Author).prefetch(Book).aall(pool), list[tuple[Author, list[Book]]])
    per_author = Query(Book).select(Book.author_id, agg.count()).group_by(Book.author_id)
    assert_type(await per_author.aall(pool), list[tuple[int | None, int]])
    assert_type(await per_author.afirst(pool), tuple[int | None, int] | None)
    assert_type(await per_author.aone(aconn), tuple[int | None, int])
    async with Query(Book).filter(Book.pages > 100).astream(pool, batch_size=500) as books:
        assert_type(books, RowStream[Book])
        async for book in books:
            assert_type(book, Book)
    async with Query(Book).select_related(Author).astream(aconn) as pairs:
        async for pair in pairs:
            assert_type(pair, tuple[Book, Author | None])
    async with per_author.astream(pool) as groups:
        async for group in groups:
            assert_type(group, tuple[int | None, int])
    assert_type(await aget(Book, pool, 1), Book)
    assert_type(await aget_or_none(Book, pool, 1), Book | None)
    assert_type(await aget_many(Book, pool, [1, 2]), list[Book | None])
    assert_type(await ainsert_many(Book, pool, [Book("t", 1)], returning=True), int)
    assert_type(await aupdate_many(Book, pool, [Book("t", 1)]), int)
    shelf = Shelf("top")
    assert_type(await shelf.ainsert(pool), None)
    assert_type(await Shelf.aget(pool, 1), Shelf)
    assert_type(await Shelf.aget_or_none(pool, 1), Shelf | None)
    assert_type(await Shelf.aget_many(pool, [1, 2]), list[Shelf | None])
    assert_type(await Shelf.ainsert_many(pool, [shelf]), int)
    assert_type(await Shelf.aupdate_many(pool, [shelf]), int)
    # The two kinds of executor do not mix (strict mode reports an ignore that is not needed).
    Query(Book).all(pool)  # type: ignore[arg-type]
    await Query(Book).aall(blocking)  # type: ignore[arg-type]
    await shelf.ainsert(blocking)  # type: ignore[arg-type]
    atransaction(blocking)  # type: ignore[arg-type]
    async with atransaction(pool) as conn:
        assert_type(conn, chopin_pg.AsyncConnection)
        async with atransaction(conn) as inner:  # a savepoint
            assert_type(inner, chopin_pg.AsyncConnection)
