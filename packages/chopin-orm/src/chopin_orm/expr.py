"""SQL expressions built from model columns: ``Item.quantity < 5``, ``&``, ``|``, ``~``.

Every value becomes a ``$n`` parameter sent out of band; identifiers are quoted. Raw
fragments (``Raw("quantity < $1", 5)``) keep their own ``$1..$n``, renumbered when the
query is assembled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chopin_pg.connection import quote_identifier as pg_quote_identifier

from .errors import OrmError

__all__ = ["Column", "Expr", "Ordering", "Params", "Raw", "col", "quote_identifier", "renumber"]


def quote_identifier(name: str) -> str:
    """Quote an SQL identifier (``a"b`` becomes ``"a""b"``).

    Raises:
        OrmError: The name is empty or contains NUL.
    """
    if not name or "\x00" in name:
        raise OrmError(f"invalid SQL identifier {name!r}")
    return pg_quote_identifier(name)


class Params:
    """The parameter values of one statement, numbered ``$1..$n`` in the order added."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        """Append a value; return its placeholder."""
        self.values.append(value)
        return f"${len(self.values)}"


# Skips what may contain a "$n" that is not a placeholder: string literals (also E''),
# quoted identifiers, dollar-quoted strings, comments.
_TOKENS = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|(\$[A-Za-z_]?[A-Za-z0-9_]*\$)|--[^\n]*|/\*.*?\*/|\$(\d+)""",
    re.DOTALL,
)


def renumber(sql: str, params: Sequence[Any], into: Params) -> str:
    """Rewrite a raw fragment's ``$1..$n`` to follow the placeholders already in ``into``.

    Raises:
        OrmError: The fragment uses ``$k`` with no k-th parameter, or leaves a parameter unused.
    """
    placeholders = [into.add(v) for v in params]
    used: set[int] = set()
    out: list[str] = []
    pos = 0
    for match in _TOKENS.finditer(sql):
        if match.start() < pos:
            continue  # inside a dollar-quoted string already copied
        tag, number = match.group(1), match.group(2)
        if tag is not None:
            end = sql.find(tag, match.end())
            if end < 0:
                raise OrmError(f"raw SQL: unterminated dollar-quoted string {tag}: {sql!r}")
            out.append(sql[pos : end + len(tag)])
            pos = end + len(tag)
            continue
        if number is None:
            continue
        index = int(number)
        if not 1 <= index <= len(params):
            raise OrmError(f"raw SQL: ${index} but {len(params)} parameter(s) given: {sql!r}")
        used.add(index)
        out.append(sql[pos : match.start()])
        out.append(placeholders[index - 1])
        pos = match.end()
    out.append(sql[pos:])
    if len(used) != len(params):
        raise OrmError(f"raw SQL: {len(params)} parameter(s) given, {len(used)} used: {sql!r}")
    return "".join(out)


class Expr:
    """An SQL expression; combine conditions with ``&``, ``|`` and ``~``."""

    __slots__ = ()

    def compile(self, params: Params) -> str:
        """The SQL text, adding this expression's values to ``params``."""
        raise NotImplementedError

    def __and__(self, other: Expr) -> Expr:
        return _BoolOp("AND", (self, _as_expr(other)))

    def __or__(self, other: Expr) -> Expr:
        return _BoolOp("OR", (self, _as_expr(other)))

    def __invert__(self) -> Expr:
        return _Not(self)

    def __bool__(self) -> bool:
        raise OrmError("an SQL expression has no truth value: combine conditions with &, |, ~ (not and/or/not)")


def _as_expr(value: object) -> Expr:
    if isinstance(value, Expr):
        return value
    raise OrmError(
        f"expected an SQL expression (Model.column < value, Raw(...)), got {type(value).__name__}: {value!r}"
        " -- was a model attribute read from an instance instead of the class?"
    )


class Raw(Expr):
    """A raw SQL fragment with its own ``$1..$n`` parameters: ``Raw("quantity < $1", 5)``."""

    __slots__ = ("params", "sql")

    def __init__(self, sql: str, *params: Any) -> None:
        if not isinstance(sql, str):
            raise OrmError(f"Raw: expected SQL text, got {type(sql).__name__}")
        self.sql = sql
        self.params = params

    def compile(self, params: Params) -> str:
        return "(" + renumber(self.sql, self.params, params) + ")"


class _BoolOp(Expr):
    __slots__ = ("op", "parts")

    def __init__(self, op: str, parts: tuple[Expr, ...]) -> None:
        self.op = op
        self.parts = parts

    def compile(self, params: Params) -> str:
        return "(" + f" {self.op} ".join(p.compile(params) for p in self.parts) + ")"


class _Not(Expr):
    __slots__ = ("inner",)

    def __init__(self, inner: Expr) -> None:
        self.inner = inner

    def compile(self, params: Params) -> str:
        return "(NOT " + self.inner.compile(params) + ")"


class _Compare(Expr):
    __slots__ = ("column", "op", "value")

    def __init__(self, column: Column, op: str, value: Any) -> None:
        self.column = column
        self.op = op
        self.value = value

    def compile(self, params: Params) -> str:
        value = self.value
        if isinstance(value, Column):
            return f"({self.column.sql} {self.op} {value.sql})"
        return f"({self.column.sql} {self.op} {params.add(self.column.to_db(value))})"


class _IsNull(Expr):
    __slots__ = ("column", "negate")

    def __init__(self, column: Column, negate: bool) -> None:
        self.column = column
        self.negate = negate

    def compile(self, params: Params) -> str:
        return f"({self.column.sql} IS {'NOT ' if self.negate else ''}NULL)"


class _In(Expr):
    __slots__ = ("column", "values")

    def __init__(self, column: Column, values: list[Any]) -> None:
        self.column = column
        self.values = values

    def compile(self, params: Params) -> str:
        if not self.values:
            return "FALSE"
        # One array parameter, whatever the number of values: one prepared statement.
        return f"({self.column.sql} = ANY({params.add(self.values)}))"


class Ordering:
    """``column ASC|DESC [NULLS FIRST|LAST]`` for ``order_by``."""

    __slots__ = ("column", "descending", "nulls")

    def __init__(self, column: Column, descending: bool, nulls: str | None = None) -> None:
        self.column = column
        self.descending = descending
        self.nulls = nulls

    @property
    def sql(self) -> str:
        """The ORDER BY item."""
        text = f"{self.column.sql} {'DESC' if self.descending else 'ASC'}"
        return text + (f" NULLS {self.nulls}" if self.nulls else "")


def _identity(value: Any) -> Any:
    return value


class Column:
    """A model column on the class (``Item.quantity``): build conditions and orderings with it.

    Reading the attribute from an instance gives the instance's value as usual.

    Attributes:
        model: The model class.
        attr: The dataclass field name.
        name: The column name in SQL.
        sql: The qualified, quoted column (``"items"."quantity"``).
    """

    __slots__ = ("_to_db", "attr", "model", "name", "sql")

    def __init__(self, model: type, attr: str, name: str, table_sql: str, to_db: Callable[[Any], Any] | None) -> None:
        self.model = model
        self.attr = attr
        self.name = name
        self.sql = f"{table_sql}.{quote_identifier(name)}"
        self._to_db = to_db or _identity

    def to_db(self, value: Any) -> Any:
        """Convert a Python value for this column into what the driver sends."""
        return None if value is None else self._to_db(value)

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.attr!r}")

    def __eq__(self, other: object) -> Expr:  # type: ignore[override]
        if other is None:
            return _IsNull(self, False)
        return _Compare(self, "=", other)

    def __ne__(self, other: object) -> Expr:  # type: ignore[override]
        if other is None:
            return _IsNull(self, True)
        return _Compare(self, "<>", other)

    def __lt__(self, other: Any) -> Expr:
        return _Compare(self, "<", other)

    def __le__(self, other: Any) -> Expr:
        return _Compare(self, "<=", other)

    def __gt__(self, other: Any) -> Expr:
        return _Compare(self, ">", other)

    def __ge__(self, other: Any) -> Expr:
        return _Compare(self, ">=", other)

    __hash__ = object.__hash__

    def in_(self, values: Iterable[Any]) -> Expr:
        """``column = ANY($n)`` (an empty collection matches nothing)."""
        if isinstance(values, str | bytes):
            raise OrmError(f"{self.attr}.in_(): expected a collection of values, got {type(values).__name__}")
        return _In(self, [self.to_db(v) for v in values])

    def is_null(self) -> Expr:
        """``column IS NULL``."""
        return _IsNull(self, False)

    def is_not_null(self) -> Expr:
        """``column IS NOT NULL``."""
        return _IsNull(self, True)

    def like(self, pattern: str) -> Expr:
        """``column LIKE $n`` (the pattern is a parameter; ``%`` and ``_`` are its wildcards)."""
        return _Compare(self, "LIKE", pattern)

    def ilike(self, pattern: str) -> Expr:
        """``column ILIKE $n`` (case-insensitive ``like``)."""
        return _Compare(self, "ILIKE", pattern)

    def asc(self, nulls: str | None = None) -> Ordering:
        """Ascending order (``nulls``: ``"FIRST"`` or ``"LAST"``)."""
        return Ordering(self, False, _nulls(nulls))

    def desc(self, nulls: str | None = None) -> Ordering:
        """Descending order (``nulls``: ``"FIRST"`` or ``"LAST"``)."""
        return Ordering(self, True, _nulls(nulls))

    def __repr__(self) -> str:
        return f"Column({self.model.__qualname__}.{self.attr})"


class SlotColumn(Column):
    """A :class:`Column` on a ``slots=True`` model: instance reads and writes go to the slot."""

    __slots__ = ("_member",)

    def __init__(self, member: Any, *args: Any) -> None:
        super().__init__(*args)
        self._member = member

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return self._member.__get__(obj, owner)

    def __set__(self, obj: object, value: Any) -> None:
        self._member.__set__(obj, value)

    def __delete__(self, obj: object) -> None:
        self._member.__delete__(obj)


def _nulls(nulls: str | None) -> str | None:
    if nulls is None:
        return None
    upper = nulls.upper()
    if upper not in ("FIRST", "LAST"):
        raise OrmError(f"nulls: expected 'FIRST' or 'LAST', got {nulls!r}")
    return upper


def col(attribute: Any) -> Column:
    """The :class:`Column` behind ``Model.attr``, typed for mypy (``col(Item.name).like("a%")``).

    Raises:
        OrmError: ``attribute`` is not a model column.
    """
    if not isinstance(attribute, Column):
        raise OrmError(f"col(): expected a model column such as Item.name, got {type(attribute).__name__}")
    return attribute
