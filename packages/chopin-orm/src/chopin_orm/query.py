"""``Query(Item)`` / ``Item.query()``: filters, ordering, paging, joins, and the statements they end in.

A query is immutable: each builder method returns a new one. Terminal methods take an
executor: ``Item.query().filter(Item.quantity < 5).order_by(Item.name).all(conn)``.
Raw fragments keep their own ``$1..$n`` (renumbered when assembled); expression values
become parameters; identifiers are quoted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar, overload

from chopin_pg import Connection

from .errors import ModelError, MultipleRows, NotFound, OrmError
from .executor import Executor, acquire, run_execute, run_query
from .expr import Column, Expr, Ordering, Params, Raw, quote_identifier
from .model import ModelInfo, model_info

__all__ = ["ITER_BATCH", "Query"]

M = TypeVar("M")
N = TypeVar("N")
R = TypeVar("R")

#: Rows fetched per round trip by ``Query.iter`` (its server-side cursor).
ITER_BATCH = 1000


class _Join:
    __slots__ = ("info", "kind", "on", "related")

    def __init__(self, info: ModelInfo, on: Expr, kind: str, related: bool) -> None:
        self.info = info
        self.on = on
        self.kind = kind
        self.related = related  # its columns are selected (select_related)


def _fk_condition(left: ModelInfo, right: ModelInfo) -> Expr | None:
    """``left.fk = right.pk`` when one of the two models references the other."""
    for a, b in ((left, right), (right, left)):
        for f in a.fields:
            ref = f.options.references
            if ref is b.cls and len(b.pk) == 1:
                return a.column(f.attr) == b.column(b.pk[0].attr)
    return None


class Query(Generic[R]):
    """A SELECT over one model, with optional joins.

    Rows are model instances, or tuples ``(model, related, ...)`` after ``select_related``.
    """

    __slots__ = ("_info", "_joins", "_limit", "_offset", "_order", "_where")

    def __init__(self, model: type[R]) -> None:
        self._info = model_info(model)
        self._where: tuple[Expr, ...] = ()
        self._order: tuple[str, ...] = ()
        self._limit: int | None = None
        self._offset: int | None = None
        self._joins: tuple[_Join, ...] = ()

    def _copy(self, **changes: Any) -> Any:
        q = object.__new__(Query)
        for name in Query.__slots__:
            setattr(q, name, changes.get(name, getattr(self, name)))
        return q

    # -- building -----------------------------------------------------------------

    def filter(self, condition: Expr | str | bool, *params: Any) -> Query[R]:
        """Add a condition (AND-ed with the others).

        Args:
            condition: An expression (``Item.quantity < 5``, combined with ``&``/``|``/``~``)
                or a raw SQL fragment with its own ``$1..$n`` (trusted text: never user input).
            *params: The raw fragment's parameter values.

        Raises:
            OrmError: ``condition`` is neither (e.g. a ``bool`` from comparing an instance's value).
        """
        if isinstance(condition, str):
            expr: Expr = Raw(condition, *params)
        elif isinstance(condition, Expr):
            if params:
                raise OrmError("filter(): parameters go with a raw SQL fragment, not with an expression")
            expr = condition
        else:
            raise OrmError(
                f"filter(): expected an expression (Item.quantity < 5) or raw SQL text, got {type(condition).__name__}"
            )
        return self._copy(_where=(*self._where, expr))  # type: ignore[no-any-return]

    def order_by(self, *items: Column | Ordering | str) -> Query[R]:
        """Set the ordering: columns (ascending), ``Item.x.desc()``, or raw SQL text (trusted)."""
        parts: list[str] = []
        for item in items:
            if isinstance(item, Ordering):
                parts.append(item.sql)
            elif isinstance(item, Column):
                parts.append(item.sql + " ASC")
            elif isinstance(item, str):
                parts.append(item)
            else:
                raise OrmError(f"order_by(): expected a column, an ordering or SQL text, got {type(item).__name__}")
        return self._copy(_order=tuple(parts))  # type: ignore[no-any-return]

    def limit(self, n: int | None) -> Query[R]:
        """At most ``n`` rows (``None``: no limit)."""
        return self._copy(_limit=_count_arg("limit", n))  # type: ignore[no-any-return]

    def offset(self, n: int | None) -> Query[R]:
        """Skip ``n`` rows."""
        return self._copy(_offset=_count_arg("offset", n))  # type: ignore[no-any-return]

    def join(self, model: type, on: Expr | None = None, *, outer: bool = False) -> Query[R]:
        """Join another model (to filter or order on its columns); rows stay this query's.

        Args:
            model: The model to join.
            on: The join condition (default: the foreign key between the two models).
            outer: ``LEFT JOIN`` instead of ``JOIN``.

        Raises:
            ModelError: No ``on`` and no foreign key links the models.
        """
        info = self._check_new(model_info(model))
        join = _Join(info, self._on(info, on), "LEFT JOIN" if outer else "JOIN", False)
        return self._copy(_joins=(*self._joins, join))  # type: ignore[no-any-return]

    def _check_new(self, info: ModelInfo, joins: Sequence[_Join] | None = None) -> ModelInfo:
        present = [self._info, *(j.info for j in (self._joins if joins is None else joins))]
        if info in present:
            raise ModelError(
                f"{info.cls.__qualname__} is already in the query: self-joins (table aliases) are not supported;"
                " use a raw filter such as filter('parent_id IN (SELECT ...)')"
            )
        return info

    def _on(self, info: ModelInfo, on: Expr | None) -> Expr:
        if on is not None:
            return on
        for left in (self._info, *(j.info for j in self._joins)):
            cond = _fk_condition(left, info)
            if cond is not None:
                return cond
        raise ModelError(f"join: no foreign key links {info.cls.__qualname__} to the query's models; pass on=")

    @overload
    def select_related(self: Query[M], model: type[N], /) -> Query[tuple[M, N | None]]: ...
    @overload
    def select_related(self, *models: type) -> Query[tuple[Any, ...]]: ...
    def select_related(self, *models: type) -> Any:
        """Also load the models this one references, in the same statement (``LEFT JOIN``).

        Rows become tuples ``(instance, related, ...)``; a related item is ``None`` when the
        foreign key is NULL.
        """
        if not models:
            raise OrmError("select_related(): name at least one model")
        joins = list(self._joins)
        for model in models:
            info = self._check_new(model_info(model), joins)
            on = None
            for left in (self._info, *(j.info for j in joins)):
                for f in left.fields:
                    if f.options.references is info.cls:
                        on = left.column(f.attr) == info.column(info.require_pk("select_related")[0].attr)
                        break
                if on is not None:
                    break
            if on is None:
                raise ModelError(
                    f"select_related: no loaded model has a foreign key to {info.cls.__qualname__}"
                    " (use join() for the reverse direction)"
                )
            joins.append(_Join(info, on, "LEFT JOIN", True))
        return self._copy(_joins=tuple(joins))

    # -- SQL ----------------------------------------------------------------------

    def _from(self, params: Params) -> str:
        sql = self._info.table_sql
        for j in self._joins:
            sql += f" {j.kind} {j.info.table_sql} ON {j.on.compile(params)}"
        return sql

    def _where_sql(self, params: Params) -> str:
        if not self._where:
            return ""
        return " WHERE " + " AND ".join(e.compile(params) for e in self._where)

    def _tail(self, params: Params, order: bool = True) -> str:
        sql = ""
        if order and self._order:
            sql += " ORDER BY " + ", ".join(self._order)
        if self._limit is not None:
            sql += f" LIMIT {params.add(self._limit)}"
        if self._offset is not None:
            sql += f" OFFSET {params.add(self._offset)}"
        return sql

    def _related(self) -> list[ModelInfo]:
        return [j.info for j in self._joins if j.related]

    def sql(self) -> tuple[str, list[Any]]:
        """The SELECT statement and its parameters (what ``all()`` runs)."""
        params = Params()
        select = self._info.select_list
        for info in self._related():
            select += ", " + info.select_list
        body = f"SELECT {select} FROM {self._from(params)}{self._where_sql(params)}{self._tail(params)}"
        return body, params.values

    def _decode_all(self, rows: list[Any]) -> list[Any]:
        related = self._related()
        if not related:
            return self._info.decode_rows(rows)
        decoders = [self._info.decode]
        offset = len(self._info.fields)
        for info in related:
            decoders.append(info.decoder_at(offset, True))
            offset += len(info.fields)
        return [tuple(d(r._values) for d in decoders) for r in rows]  # noqa: SLF001  measured: r._values 0.05 us, tuple(r) 0.96 us per row

    # -- terminal methods ---------------------------------------------------------

    def all(self, executor: Executor) -> list[R]:
        """Every matching row."""
        sql, params = self.sql()
        return self._decode_all(run_query(executor, sql, params))

    def first(self, executor: Executor) -> R | None:
        """The first row (``LIMIT 1``), or ``None``."""
        rows = self.limit(1).all(executor)
        return rows[0] if rows else None

    def one(self, executor: Executor) -> R:
        """The only row.

        Raises:
            NotFound: No row matches.
            MultipleRows: More than one row matches.
        """
        rows = self.limit(2).all(executor) if self._limit is None else self.all(executor)
        if not rows:
            raise NotFound(f"{self._info.cls.__qualname__}: no row matches the query")
        if len(rows) > 1:
            raise MultipleRows(f"{self._info.cls.__qualname__}: more than one row matches the query")
        return rows[0]

    def count(self, executor: Executor) -> int:
        """How many rows match (honouring ``limit``/``offset``)."""
        params = Params()
        inner = f"FROM {self._from(params)}{self._where_sql(params)}"
        if self._limit is not None or self._offset is not None:
            sql = f"SELECT count(*) FROM (SELECT 1 {inner}{self._tail(params, order=False)}) AS q"
        else:
            sql = f"SELECT count(*) {inner}"
        return int(run_query(executor, sql, params.values)[0][0])

    def exists(self, executor: Executor) -> bool:
        """Whether any row matches."""
        params = Params()
        sql = f"SELECT EXISTS (SELECT 1 FROM {self._from(params)}{self._where_sql(params)}{self._tail(params)})"
        return bool(run_query(executor, sql, params.values)[0][0])

    def _target(self, params: Params) -> str:
        """The WHERE clause of an UPDATE/DELETE: direct, or by key through a sub-select."""
        info = self._info
        if not self._joins and self._limit is None and self._offset is None:
            return self._where_sql(params)
        pk = info.require_pk("update/delete with joins or limits")
        keys = ", ".join(f"{info.table_sql}.{f.quoted}" for f in pk)
        sub = f"SELECT {keys} FROM {self._from(params)}{self._where_sql(params)}{self._tail(params)}"
        return f" WHERE ({keys}) IN ({sub})"

    def update(self, executor: Executor, **values: Any) -> int:
        """``UPDATE`` the matching rows; values are Python values or expressions (``Raw("quantity + $1", 1)``).

        Returns:
            The number of rows updated.
        """
        if not values:
            raise OrmError("update(): give at least one field=value")
        info = self._info
        params = Params()
        sets: list[str] = []
        for attr, value in values.items():
            column = info.column(attr)
            if info.by_attr[attr].generated:
                raise ModelError(f"update(): {attr} is an identity column")
            if isinstance(value, Expr):
                sets.append(f"{quote_identifier(column.name)} = {value.compile(params)}")
            elif isinstance(value, Column):
                sets.append(f"{quote_identifier(column.name)} = {value.sql}")
            else:
                sets.append(f"{quote_identifier(column.name)} = {params.add(column.to_db(value))}")
        sql = f"UPDATE {info.table_sql} SET {', '.join(sets)}{self._target(params)}"
        return run_execute(executor, sql, params.values)

    def delete(self, executor: Executor) -> int:
        """``DELETE`` the matching rows.

        Returns:
            The number of rows deleted.
        """
        params = Params()
        sql = f"DELETE FROM {self._info.table_sql}{self._target(params)}"
        return run_execute(executor, sql, params.values)

    def iter(self, executor: Executor, batch_size: int = ITER_BATCH) -> Iterator[R]:
        """Stream the rows through a server-side cursor, ``batch_size`` per round trip.

        Outside a transaction, one is opened for the iteration and ended with it (committed
        when exhausted, rolled back when the loop stops early or fails: it only read); inside
        one, the cursor lives in it and is closed at the end. Keep the connection for the
        iterator until it is exhausted or closed.
        """
        if batch_size < 1:
            raise OrmError(f"iter(): batch_size must be >= 1, got {batch_size}")
        sql, params = self.sql()
        return self._iterate(executor, sql, params, batch_size)

    def _iterate(self, executor: Executor, sql: str, params: list[Any], batch_size: int) -> Iterator[R]:
        conn, guard = acquire(executor)
        own = False
        declared = False
        # Named after the statement: the same query reuses the cached (same-shaped) FETCH.
        name = "chopin_orm_" + hashlib.blake2s(sql.encode(), digest_size=8).hexdigest()
        cursor = quote_identifier(name)
        try:
            if conn.transaction_status == "I":
                conn.begin()
                own = True
            else:
                # Inside a caller's transaction the same query may already be iterating
                # (nested loops): take the next free name rather than fail the transaction.
                taken = {r[0] for r in conn.query("SELECT name FROM pg_cursors WHERE name LIKE $1", (name + "%",))}
                suffix = 0
                while (name if not suffix else f"{name}_{suffix}") in taken:
                    suffix += 1
                cursor = quote_identifier(name if not suffix else f"{name}_{suffix}")
            conn.execute(f"DECLARE {cursor} NO SCROLL CURSOR FOR {sql}", params)
            declared = True
            fetch = f"FETCH FORWARD {int(batch_size)} FROM {cursor}"
            while True:
                rows = conn.query(fetch, ())
                if not rows:
                    break
                yield from self._decode_all(rows)
                if len(rows) < batch_size:
                    break
        except BaseException:
            if own and not conn.closed:
                conn.rollback()
                own = False
            raise
        finally:
            _finish_cursor(conn, cursor, declared, own)
            if guard is not None:
                guard.release()

    def __repr__(self) -> str:
        return f"<Query {self.sql()[0]!r}>"


def _finish_cursor(conn: Connection, cursor: str, declared: bool, own: bool) -> None:
    if conn.closed:
        return
    if own:
        conn.commit()  # also closes the cursor
    elif declared and conn.transaction_status == "T":
        conn.execute(f"CLOSE {cursor}")


def _count_arg(what: str, n: int | None) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise OrmError(f"{what}(): expected a non-negative int, got {n!r}")
    return n
