"""The shapes the migration planner shares: a change as an (up, down) pair, the plan by
phase, the hints a caller gives, and a live table with the names of its constraints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ._migration_sql import (
    normal_on_delete,
    quote,
)
from .schema import ForeignKey, TableMeta

#: One change: (up, down) statements; either side may be None (nothing to run).
Op = tuple[str | None, str | None]


@dataclass(frozen=True, slots=True)
class LiveTable(TableMeta):
    """A ``TableMeta`` read from the server, with the names of its keys and indexes.

    ``object_names`` holds ``(role, columns, kind, name)``: role is "pkey", "unique",
    "index" or "fkey"; kind is "constraint" or "index" (a UNIQUE made by
    ``CREATE UNIQUE INDEX`` is an index).
    """

    object_names: tuple[tuple[str, tuple[str, ...], str, str], ...] = ()

    def name_of(self, role: str, columns: tuple[str, ...]) -> tuple[str, str] | None:
        """``(kind, name)`` of the live object with this role on these columns, if any."""
        for r, cols, kind, name in self.object_names:
            if r == role and cols == columns:
                return kind, name
        return None


def table_key(meta: TableMeta) -> str:
    """The key ``diff`` uses for a table: ``schema.name``, or ``name`` when no schema is named."""
    return f"{meta.schema}.{meta.name}" if meta.schema else meta.name


def fk_shape(fk: ForeignKey | None, own_schema: str | None) -> tuple[str, str, str | None] | None:
    if fk is None:
        return None
    table = fk.table
    if own_schema and table.startswith(own_schema + "."):
        table = table[len(own_schema) + 1 :]
    return (table, fk.column, normal_on_delete(fk))


def type_ref(type_name: str) -> str:
    """A quoted (schema-qualified) type name."""
    schema, dot, name = type_name.rpartition(".")
    return f"{quote(schema)}.{quote(name)}" if dot else quote(name)


def text_literal(text: str) -> str:
    """A quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class MigrationHints:
    """What ``diff`` cannot tell from the schema alone: renames, backfills, dropped tables.

    Table keys are table names (``schema.name`` for models that name a schema).

    Attributes:
        renamed_tables: ``{old: new}``: ``ALTER TABLE ... RENAME`` instead of drop + create.
        renamed_columns: ``{table: {old: new}}`` (``table`` is the new table name):
            ``RENAME COLUMN`` instead of drop + add, so the data stays.
        renamed_enum_values: ``{enum type: {old label: new label}}``: ``ALTER TYPE ... RENAME VALUE``.
        backfill: ``{"table.column": "SQL expression"}`` for a NOT NULL column added to a table
            with rows: add it nullable, ``UPDATE`` every row to the expression (it may read
            other columns), then ``SET NOT NULL``; also fills NULLs before a column becomes NOT NULL.
        drop_missing_tables: Drop live tables no model names (``make_migration`` never counts
            its migrations table); off by default, as tables may belong to something else.
    """

    renamed_tables: Mapping[str, str] = field(default_factory=dict)
    renamed_columns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    renamed_enum_values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    backfill: Mapping[str, str] = field(default_factory=dict)
    drop_missing_tables: bool = False


@dataclass
class Plan:
    """Changes by phase; up runs the phases in this order, down runs the inverses backwards."""

    renames: list[Op] = field(default_factory=list)
    create_types: list[Op] = field(default_factory=list)
    drop_fks: list[Op] = field(default_factory=list)
    drop_keys: list[Op] = field(default_factory=list)
    drop_pks: list[Op] = field(default_factory=list)
    drop_tables: list[Op] = field(default_factory=list)
    create_tables: list[Op] = field(default_factory=list)
    add_columns: list[Op] = field(default_factory=list)
    alter_columns: list[Op] = field(default_factory=list)
    drop_columns: list[Op] = field(default_factory=list)
    add_pks: list[Op] = field(default_factory=list)
    add_keys: list[Op] = field(default_factory=list)
    add_fks: list[Op] = field(default_factory=list)

    def ops(self) -> list[Op]:
        """Every change in phase order."""
        return [op for phase in vars(self).values() for op in phase]


@dataclass
class PlanContext:
    """What the per-table planners need besides the two tables."""

    hints: MigrationHints
    enums: dict[str, tuple[str, ...]]  # live enum labels after the planned renames and additions
