"""The query builder's result types, checked by mypy --strict and never run (not a test module).

mypy --strict packages/chopin-orm/tests/typing_queries.py
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_type

import chopin_pg
from chopin_orm import Query, agg, column, model, related


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
