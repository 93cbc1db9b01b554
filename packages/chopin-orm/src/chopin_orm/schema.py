"""Table metadata: what a model declares, in the shape migrations and the CLI read.

``table_meta(Model)`` gives the ``TableMeta`` a ``@model`` class declared; the migration
generator (``autogen``) introspects the live schema into the same shape and diffs the two.
Types are spelled as PostgreSQL's ``format_type()`` prints them ("integer", "bigint",
"text", "character varying(20)", "timestamp with time zone", "numeric(10,2)", "jsonb",
"integer[]", "uuid", "boolean", ...), so a declared type and an introspected one compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ModelError

__all__ = ["Check", "ColumnMeta", "CompositeForeignKey", "ForeignKey", "TableMeta", "table_meta"]

META_ATTR = "__chopin_table__"


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """``REFERENCES table (column) [ON DELETE action]``."""

    table: str
    column: str
    on_delete: str | None = None  # "CASCADE", "SET NULL", "RESTRICT", or None (NO ACTION)


@dataclass(frozen=True, slots=True)
class CompositeForeignKey:
    """``FOREIGN KEY (columns) REFERENCES table (ref_columns) [ON DELETE action]`` over several columns.

    ``columns`` are column names of the declaring table (attribute names are accepted in
    ``@model(foreign_keys=...)`` and mapped to column names).
    """

    columns: tuple[str, ...]
    table: str
    ref_columns: tuple[str, ...]
    on_delete: str | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """A named ``CHECK (expression)`` constraint; ``expression`` is trusted SQL written by the programmer."""

    name: str
    expression: str


@dataclass(frozen=True, slots=True)
class ColumnMeta:
    """One column of a table."""

    name: str  # column name in SQL
    attr: str  # the dataclass field it maps to (same as name unless renamed)
    sql_type: str  # as format_type() prints it
    nullable: bool
    primary_key: bool = False
    identity: bool = False  # GENERATED ALWAYS AS IDENTITY (serial counts as identity when introspected)
    default_sql: str | None = None  # SQL default expression, e.g. "now()", "gen_random_uuid()", "0"
    unique: bool = False
    index: bool = False
    references: ForeignKey | None = None
    enum_values: tuple[str, ...] = ()  # labels of the PostgreSQL enum sql_type names (Enum-annotated fields)
    # An SQL literal for the Python default (``likes: int = 0`` -> "0"): fills existing rows when a
    # migration adds the column or makes it NOT NULL; never a server default.
    backfill_sql: str | None = None


@dataclass(frozen=True, slots=True)
class TableMeta:
    """One table: its columns in declaration order and its keys."""

    name: str
    columns: tuple[ColumnMeta, ...]
    primary_key: tuple[str, ...]
    schema: str | None = None  # None = the search_path's first schema ("public")
    unique_together: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    checks: tuple[Check, ...] = ()
    foreign_keys: tuple[CompositeForeignKey, ...] = ()  # multi-column ones; single-column ones live on ColumnMeta

    def column(self, name: str) -> ColumnMeta:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


def table_meta(model: type) -> TableMeta:
    """The ``TableMeta`` a ``@model`` class declared; ``ModelError`` for any other class."""
    meta = model.__dict__.get(META_ATTR)
    if not isinstance(meta, TableMeta):
        raise ModelError(f"{model.__qualname__} is not a chopin-orm model (decorate it with @model)")
    return meta
