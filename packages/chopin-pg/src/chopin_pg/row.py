"""Result rows: :class:`Row`, indexable by position or column name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar, overload

from .errors import InterfaceError

__all__ = ["Row"]

T = TypeVar("T")


class Row:
    """One result row.

    ``row[0]`` and ``row["name"]`` read a column; ``len(row)``, iteration and
    ``tuple(row)`` work as on a tuple.  Rows of one result share one name map.
    When two columns share a name, ``row["name"]`` is the first.
    """

    __slots__ = ("_names", "_values")

    def __init__(self, values: tuple[Any, ...], names: dict[str, int]) -> None:
        self._values = values
        self._names = names

    @overload
    def __getitem__(self, key: int | str) -> Any: ...
    @overload
    def __getitem__(self, key: slice) -> tuple[Any, ...]: ...
    def __getitem__(self, key: int | str | slice) -> Any:
        if type(key) is str:
            try:
                return self._values[self._names[key]]
            except KeyError:
                raise KeyError(f"no column {key!r}; columns: {', '.join(self._names)}") from None
        return self._values[key]  # type: ignore[index]

    def get(self, key: str, default: Any = None) -> Any:
        """Return column ``key``, or ``default`` if there is no such column."""
        index = self._names.get(key)
        return default if index is None else self._values[index]

    def get_typed(self, key: int | str, kind: type[T]) -> T:
        """Return a column checked to be an instance of ``kind`` (``None`` is refused too).

        Raises:
            InterfaceError: The value has another type.
        """
        value = self[key]
        if not isinstance(value, kind):
            raise InterfaceError(f"column {key!r}: expected {kind.__name__}, got {type(value).__name__}")
        return value

    def keys(self) -> list[str]:
        """Column names in order."""
        return list(self._names)

    def as_dict(self) -> dict[str, Any]:
        """Column name to value."""
        return {name: self._values[i] for name, i in self._names.items()}

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Row):
            return self._values == other._values
        if isinstance(other, tuple):
            return self._values == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"Row({', '.join(f'{n}={self._values[i]!r}' for n, i in self._names.items())})"
