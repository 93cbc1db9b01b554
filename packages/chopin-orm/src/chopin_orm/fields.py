"""Field options: :func:`column` returns a ``dataclasses.field`` carrying :class:`ColumnOptions`.

A dataclass field without ``column()`` maps by its annotation alone; ``column()`` adds what
an annotation cannot say (primary key, identity, SQL type, unique, index, SQL default,
foreign key, a column name other than the attribute).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .errors import ModelError

__all__ = ["ON_DELETE_ACTIONS", "ColumnOptions", "column", "options_of"]

#: The metadata key ``column()`` stores its options under.
METADATA_KEY = "chopin_orm"

#: Accepted ``on_delete`` actions, as spelled in SQL.
ON_DELETE_ACTIONS = ("CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION")


@dataclasses.dataclass(frozen=True, slots=True)
class ColumnOptions:
    """What ``column()`` was given, minus the Python default (the dataclass field holds that)."""

    name: str | None = None
    primary_key: bool = False
    generated: bool = False
    sql_type: str | None = None
    unique: bool = False
    index: bool = False
    server_default: str | None = None
    references: Any = None  # a model class or "table.column"
    on_delete: str | None = None


_MISSING: Any = dataclasses.MISSING


def column(
    *,
    name: str | None = None,
    primary_key: bool = False,
    generated: bool = False,
    sql_type: str | None = None,
    unique: bool = False,
    index: bool = False,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | Any = _MISSING,
    server_default: str | None = None,
    references: type | str | None = None,
    on_delete: str | None = None,
    init: bool = True,
    repr: bool = True,
    compare: bool = True,
    kw_only: bool | Any = _MISSING,
) -> Any:
    """Declare a model column; use it as a dataclass field's default.

    Args:
        name: Column name in SQL (default: the attribute name).
        primary_key: Part of the primary key (several fields make a composite key).
        generated: ``GENERATED ALWAYS AS IDENTITY``: never inserted, filled by ``RETURNING``.
        sql_type: The SQL type as ``format_type()`` prints it (default: from the annotation).
        unique: ``UNIQUE`` on this column alone.
        index: A (non-unique) index on this column.
        default: The Python default (as ``dataclasses.field(default=...)``).
        default_factory: A callable making the Python default.
        server_default: An SQL default expression (``"now()"``, ``"gen_random_uuid()"``);
            on ``insert`` a ``None`` value leaves the column to it, and ``RETURNING`` reads it back.
        references: The referenced model (its primary key) or ``"table.column"``.
        on_delete: ``CASCADE``, ``SET NULL``, ``SET DEFAULT``, ``RESTRICT`` or ``NO ACTION``.
        init: As ``dataclasses.field``.
        repr: As ``dataclasses.field``.
        compare: As ``dataclasses.field``.
        kw_only: As ``dataclasses.field``.

    Returns:
        A ``dataclasses.Field`` (typed ``Any`` so it can be any field's default).

    Raises:
        ModelError: The options contradict each other.
    """
    if on_delete is not None:
        action = on_delete.upper()
        if action not in ON_DELETE_ACTIONS:
            raise ModelError(f"column(on_delete=...): expected one of {ON_DELETE_ACTIONS}, got {on_delete!r}")
        if references is None:
            raise ModelError("column(on_delete=...) needs references=")
        on_delete = action
    if generated and server_default is not None:
        raise ModelError("column(): generated=True (an identity) and server_default= exclude each other")
    if references is not None and not isinstance(references, str | type):
        raise ModelError(f"column(references=...): expected a model class or 'table.column', got {references!r}")
    options = ColumnOptions(
        name=name,
        primary_key=primary_key,
        generated=generated,
        sql_type=sql_type,
        unique=unique,
        index=index,
        server_default=server_default,
        references=references,
        on_delete=on_delete,
    )
    kwargs: dict[str, Any] = {
        "init": init,
        "repr": repr,
        "compare": compare,
        "metadata": {METADATA_KEY: options},
    }
    if default is not _MISSING:
        kwargs["default"] = default
    if default_factory is not _MISSING:
        kwargs["default_factory"] = default_factory
    if kw_only is not _MISSING:
        kwargs["kw_only"] = kw_only
    return dataclasses.field(**kwargs)


def options_of(field: dataclasses.Field[Any]) -> ColumnOptions:
    """The ``ColumnOptions`` of a dataclass field (defaults when it was declared without ``column()``)."""
    options = field.metadata.get(METADATA_KEY)
    if options is None:
        return ColumnOptions()
    if not isinstance(options, ColumnOptions):
        raise ModelError(f"field {field.name}: metadata[{METADATA_KEY!r}] is not ColumnOptions")
    return options
