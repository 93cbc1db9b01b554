"""Aggregates for ``Query.select``: ``count``, ``sum``, ``avg``, ``min``, ``max``.

Each function is typed as the value it gives (``agg.sum(Item.quantity)`` is an ``int | None``
to mypy, as ``Item.quantity`` is an ``int``), so a selection's rows are typed tuples; at
run time it returns an :class:`Aggregate`, which compares into ``having`` conditions
(``agg.count() > 2``) and orders with ``agg.desc(...)``.

```python
from chopin_orm import agg

rows = Book.query().select(Book.author_id, agg.count(), agg.sum(Book.pages)).group_by(Book.author_id).all(conn)
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from .errors import OrmError
from .expr import Column, Expr, Params
from .model import model_info

__all__ = ["Aggregate", "asc", "avg", "count", "desc", "max", "min", "sum"]

T = TypeVar("T")

_INTEGER_TYPES = ("smallint", "integer", "bigint")


class Aggregate:
    """An aggregate over a column (or ``count(*)``): its SQL and how to read its value back.

    Attributes:
        sql: The SQL text (``count(*)``, ``sum("items"."quantity")::bigint``).
        from_db: Converts the driver's value (an enum column's ``min``), or None.
    """

    __slots__ = ("from_db", "sql")

    def __init__(self, sql: str, from_db: Callable[[Any], Any] | None = None) -> None:
        self.sql = sql
        self.from_db = from_db

    def _compare(self, op: str, other: Any) -> Expr:
        return _AggregateCompare(self, op, other)

    def __eq__(self, other: object) -> Expr:  # type: ignore[override]
        return self._compare("=", other)

    def __ne__(self, other: object) -> Expr:  # type: ignore[override]
        return self._compare("<>", other)

    def __lt__(self, other: Any) -> Expr:
        return self._compare("<", other)

    def __le__(self, other: Any) -> Expr:
        return self._compare("<=", other)

    def __gt__(self, other: Any) -> Expr:
        return self._compare(">", other)

    def __ge__(self, other: Any) -> Expr:
        return self._compare(">=", other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Aggregate({self.sql!r})"


class _AggregateCompare(Expr):
    __slots__ = ("aggregate", "op", "value")

    def __init__(self, aggregate: Aggregate, op: str, value: Any) -> None:
        self.aggregate = aggregate
        self.op = op
        self.value = value

    def compile(self, params: Params) -> str:
        value = self.value
        if isinstance(value, Aggregate | Column):
            return f"({self.aggregate.sql} {self.op} {value.sql})"
        return f"({self.aggregate.sql} {self.op} {params.add(value)})"


def _column(value: Any, what: str) -> Column:
    if not isinstance(value, Column):
        raise OrmError(f"agg.{what}(): expected a model column such as Item.quantity, got {type(value).__name__}")
    return value


def _field_of(column: Column) -> tuple[str, Callable[[Any], Any] | None]:
    field = model_info(column.model).by_attr[column.attr]
    return field.sql_type, field.from_db


def count(column: Any = None, *, distinct: bool = False) -> int:
    """``count(*)``, ``count(column)`` (non-NULL values) or ``count(DISTINCT column)``."""
    if column is None:
        if distinct:
            raise OrmError("agg.count(distinct=True) needs a column")
        return cast(int, Aggregate("count(*)"))
    target = _column(column, "count").sql
    return cast(int, Aggregate(f"count({'DISTINCT ' if distinct else ''}{target})"))


def sum(column: T) -> T | None:  # read as agg.sum (shadows the builtin in this module only)
    """``sum(column)``; None over no rows. Integer sums come back as ``int`` (``::bigint``)."""
    target = _column(column, "sum")
    sql_type, _ = _field_of(target)
    # PostgreSQL sums a bigint into numeric; the cast keeps an int column's sum an int.
    cast_to = "::bigint" if sql_type in _INTEGER_TYPES else ""
    return cast(T, Aggregate(f"sum({target.sql}){cast_to}"))


def avg(column: Any) -> float | None:
    """``avg(column)`` as ``double precision`` (a float); None over no rows."""
    return cast(float, Aggregate(f"avg({_column(column, 'avg').sql})::double precision"))


def min(column: T) -> T | None:  # read as agg.min (shadows the builtin in this module only)
    """``min(column)``; None over no rows."""
    target = _column(column, "min")
    return cast(T, Aggregate(f"min({target.sql})", _field_of(target)[1]))


def max(column: T) -> T | None:  # read as agg.max (shadows the builtin in this module only)
    """``max(column)``; None over no rows."""
    target = _column(column, "max")
    return cast(T, Aggregate(f"max({target.sql})", _field_of(target)[1]))


def _order(value: Any, direction: str, nulls: str | None) -> str:
    if not isinstance(value, Aggregate | Column):
        raise OrmError(f"agg.{direction.lower()}(): expected an aggregate or a column, got {type(value).__name__}")
    if nulls is not None and nulls.upper() not in ("FIRST", "LAST"):
        raise OrmError(f"nulls: expected 'FIRST' or 'LAST', got {nulls!r}")
    return f"{value.sql} {direction}" + (f" NULLS {nulls.upper()}" if nulls else "")


def asc(value: Any, nulls: str | None = None) -> str:
    """An ``order_by`` item: ``value ASC [NULLS FIRST|LAST]`` for an aggregate (or a column)."""
    return _order(value, "ASC", nulls)


def desc(value: Any, nulls: str | None = None) -> str:
    """An ``order_by`` item: ``value DESC [NULLS FIRST|LAST]`` for an aggregate (or a column)."""
    return _order(value, "DESC", nulls)
