"""SQL text for schema changes, and the normal forms the migration generator compares.

Pure functions, no I/O: quoting, the canonical spelling of a type (as ``format_type()``
prints it) and of a default (as ``pg_get_expr()`` prints it, minus redundant casts), the
names PostgreSQL would give constraints and indexes, and the DDL statements ``autogen``
emits.  Every statement returned ends with ``;``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import math
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from chopin_pg.connection import quote_identifier

from .errors import MigrationError
from .schema import Check, ColumnMeta, CompositeForeignKey, ForeignKey, TableMeta

MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1

# Aliases PostgreSQL accepts, mapped to the name format_type() prints.
_TYPE_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "integer": "integer",
    "int8": "bigint",
    "bigint": "bigint",
    "int2": "smallint",
    "smallint": "smallint",
    "float8": "double precision",
    "double precision": "double precision",
    "float": "double precision",
    "float4": "real",
    "real": "real",
    "bool": "boolean",
    "boolean": "boolean",
    "varchar": "character varying",
    "character varying": "character varying",
    "char": "character",
    "character": "character",
    "bpchar": "character",
    "decimal": "numeric",
    "numeric": "numeric",
    "timestamptz": "timestamp with time zone",
    "timestamp with time zone": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "timestamp without time zone": "timestamp without time zone",
    "timetz": "time with time zone",
    "time with time zone": "time with time zone",
    "time": "time without time zone",
    "time without time zone": "time without time zone",
    "varbit": "bit varying",
}
_ZONED = re.compile(r"^(timestamp|time)\s*(\(\s*\d+\s*\))?\s*(with|without)\s+time\s+zone$")
_WITH_MODIFIER = re.compile(r"^([a-z0-9_ ]+?)\s*\(\s*([0-9 ,]+?)\s*\)$")
_SAFE_TYPE = re.compile(r'^[A-Za-z_"][A-Za-z0-9_ ,()."\[\]]*$')
_QUOTED_LITERAL = re.compile(r"^'(?:[^']|'')*'$")
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_SQL_NIL_FUNCTIONS = (
    "current_timestamp",
    "current_date",
    "current_time",
    "localtimestamp",
    "localtime",
    "current_user",
)
_ON_DELETE = {"CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT"}


def quote(name: str) -> str:
    """Quote an identifier (``"a""b"``)."""
    if not name or "\x00" in name:
        raise MigrationError(f"invalid identifier {name!r}")
    return quote_identifier(name)


def qualified(schema: str | None, name: str) -> str:
    """``"schema"."name"``, or ``"name"`` when ``schema`` is None."""
    return f"{quote(schema)}.{quote(name)}" if schema else quote(name)


def table_ref(meta: TableMeta) -> str:
    """The quoted (and schema-qualified when the model says so) table name."""
    return qualified(meta.schema, meta.name)


def _fk_target(table: str) -> str:
    schema, dot, name = table.rpartition(".")
    return qualified(schema if dot else None, name)


def normalize_type(sql_type: str) -> str:
    """The spelling ``format_type()`` prints for a type: ``int`` -> ``integer``, ``varchar(20)`` ->
    ``character varying(20)``, ``timestamptz`` -> ``timestamp with time zone``, ``int[]`` -> ``integer[]``.

    Types it does not know (``jsonb``, ``uuid``, enum names) come back lower-cased unless quoted.
    """
    text = " ".join(sql_type.strip().split())
    suffix = ""
    while text.endswith("[]"):
        text = text[:-2].rstrip()
        suffix += "[]"
    if text.startswith('"'):
        return text + suffix
    text = text.lower()
    zoned = _ZONED.match(text)
    if zoned:
        precision = "" if zoned[2] is None else "(" + zoned[2].strip("() ") + ")"
        return f"{zoned[1]}{precision} {zoned[3]} time zone{suffix}"
    if text in ("timestamptz", "timetz") or text.startswith(("timestamptz(", "timetz(")):
        base = "timestamp" if text.startswith("timestamptz") else "time"
        precision = text[len(base) + 2 :]
        return f"{base}{precision} with time zone{suffix}"
    modified = _WITH_MODIFIER.match(text)
    if modified:
        base = _TYPE_ALIASES.get(modified[1].strip(), modified[1].strip())
        if base in ("timestamp without time zone", "time without time zone"):
            word = base.split()[0]
            return f"{word}({modified[2].strip()}) without time zone{suffix}"
        args = ",".join(a.strip() for a in modified[2].split(","))
        return f"{base}({args}){suffix}"
    if text == "char":
        return "character(1)" + suffix
    return _TYPE_ALIASES.get(text, text) + suffix


# Types that are not enum type names when an Enum field gives them as sql_type= (stored as text).
_BUILTIN_NAMES = frozenset(_TYPE_ALIASES.values()) | {"text", "citext", "name", "jsonb", "json", "uuid"}


def names_enum_type(sql_type: str) -> bool:
    """Whether ``sql_type`` (given for an ``Enum`` field) names an enum type rather than a text type."""
    text = normalize_type(sql_type)
    return "(" not in text and not text.endswith("[]") and text not in _BUILTIN_NAMES


def sql_literal(value: Any) -> str | None:
    """An SQL literal for a Python default (``0``, ``'pen'``, ``true``), or None when there is none.

    Used only to fill existing rows in a migration (``ADD COLUMN ... DEFAULT`` then ``DROP
    DEFAULT``); the text is made here from the value, never taken from input.
    """
    if value is None or value is dataclasses.MISSING:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"'{value!r}'"
    if isinstance(value, Decimal):
        return f"'{value}'" if value.is_finite() else None
    if isinstance(value, str):
        return None if "\x00" in value else "'" + value.replace("'", "''") + "'"
    if isinstance(value, dt.datetime | dt.date | dt.time | uuid.UUID):
        return f"'{value.isoformat() if not isinstance(value, uuid.UUID) else value}'"
    return None


def factory_literal(factory: Callable[[], Any], sql_type: str) -> str | None:
    """The literal for a ``default_factory`` of ``list`` or ``dict`` (an empty array or JSON value)."""
    if factory is list:
        return "'[]'" if normalize_type(sql_type) in ("jsonb", "json") else "'{}'"
    if factory is dict:
        return "'{}'"
    return None


# A value for rows that must get one when a dropped NOT NULL column comes back (a down
# migration): the data went with the column, so any valid value of the type will do.
_ZERO_VALUES = {
    "smallint": "0",
    "integer": "0",
    "bigint": "0",
    "numeric": "0",
    "real": "0",
    "double precision": "0",
    "boolean": "false",
    "text": "''",
    "character varying": "''",
    "character": "''",
    "bytea": "''",
    "jsonb": "'null'",
    "json": "'null'",
    "uuid": "'00000000-0000-0000-0000-000000000000'",
    "date": "'epoch'",
    "timestamp with time zone": "'epoch'",
    "timestamp without time zone": "'epoch'",
    "time without time zone": "'00:00'",
    "time with time zone": "'00:00+00'",
    "interval": "'0'",
}


def zero_value(sql_type: str, enum_labels: tuple[str, ...] | None = None) -> str | None:
    """Some valid literal of the type (``0``, ``''``, ``'epoch'``, an enum's first label), or None."""
    text = normalize_type(sql_type)
    if text.endswith("[]"):
        return "'{}'"
    if enum_labels:
        return "'" + enum_labels[0].replace("'", "''") + "'"
    base = re.sub(r"\(.*\)", "", text).replace("  ", " ").strip()
    return _ZERO_VALUES.get(base)


def check_type(sql_type: str, where: str) -> str:
    """``sql_type`` normalized, or ``MigrationError`` if it holds anything but a type name."""
    if not _SAFE_TYPE.match(sql_type.strip()) or ";" in sql_type or "--" in sql_type:
        raise MigrationError(f"{where}: {sql_type!r} does not look like an SQL type name")
    return normalize_type(sql_type)


def _strip_parens(text: str) -> str:
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(text) - 1:
                return text  # "(a) || (b)": the outer parentheses do not wrap everything
        text = text[1:-1].strip()
    return text


def normalize_default(default_sql: str | None, sql_type: str) -> str | None:
    """A default expression in a form two spellings of the same value share.

    ``'x'::text`` and ``'x'`` compare equal on a text column, ``'-1'::integer`` and ``-1`` on
    an integer one, ``TRUE`` and ``true``, ``CURRENT_TIMESTAMP`` and ``current_timestamp``.
    Other expressions must be written as ``pg_get_expr()`` prints them to compare equal.
    """
    if default_sql is None:
        return None
    text = _strip_parens(" ".join(default_sql.strip().split()))
    if not text or text.upper() == "NULL":
        return None
    literal, cast, target = text.rpartition("::")
    if cast and _QUOTED_LITERAL.match(literal.strip()):
        cast_type = normalize_type(target)
        column_type = normalize_type(sql_type)
        if cast_type == column_type or cast_type == re.sub(r"\(.*\)", "", column_type):
            text = literal.strip()
    if _QUOTED_LITERAL.match(text) and _NUMBER.match(text[1:-1]):
        text = text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered
    if lowered in _SQL_NIL_FUNCTIONS:
        return text.upper()
    return text


def object_name(table: str, columns: tuple[str, ...], suffix: str) -> str:
    """The name PostgreSQL gives by default (``items_name_key``, ``items_pkey``), kept within 63 bytes.

    Longer names are cut and end in a hash of the full name, so two long names stay distinct.
    """
    name = "_".join((table, *columns, suffix))
    if len(name.encode()) <= MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    cut = name.encode()[: MAX_IDENTIFIER_BYTES - 9].decode(errors="ignore")
    return f"{cut}_{digest}"


def effective_nullable(col: ColumnMeta) -> bool:
    """Whether the column accepts NULL once created (primary keys and identities never do)."""
    return col.nullable and not col.primary_key and not col.identity


def normal_on_delete(fk: ForeignKey) -> str | None:
    """``ON DELETE`` action, with ``NO ACTION`` (the default) as None."""
    action = None if fk.on_delete is None else " ".join(fk.on_delete.upper().split())
    if action in (None, "NO ACTION"):
        return None
    if action not in _ON_DELETE:
        raise MigrationError(f"foreign key to {fk.table}: unknown ON DELETE action {fk.on_delete!r}")
    return action


def column_definition(col: ColumnMeta, where: str) -> str:
    """``"name" type [GENERATED ALWAYS AS IDENTITY] [NOT NULL] [DEFAULT expr]``."""
    parts = [quote(col.name), check_type(col.sql_type, f"{where}.{col.name}")]
    if col.identity:
        parts.append("GENERATED ALWAYS AS IDENTITY")
    elif not effective_nullable(col):
        parts.append("NOT NULL")
    if col.default_sql is not None and not col.identity:
        parts.append(f"DEFAULT {col.default_sql}")
    return " ".join(parts)


def _columns(names: tuple[str, ...]) -> str:
    return ", ".join(quote(n) for n in names)


def primary_key_clause(meta: TableMeta) -> str:
    return f"CONSTRAINT {quote(object_name(meta.name, (), 'pkey'))} PRIMARY KEY ({_columns(meta.primary_key)})"


def unique_clause(meta: TableMeta, columns: tuple[str, ...], name: str | None = None) -> str:
    name = name or object_name(meta.name, columns, "key")
    return f"CONSTRAINT {quote(name)} UNIQUE ({_columns(columns)})"


def foreign_key_clause(meta: TableMeta, col: str, fk: ForeignKey, name: str | None = None) -> str:
    name = name or object_name(meta.name, (col,), "fkey")
    action = normal_on_delete(fk)
    tail = f" ON DELETE {action}" if action else ""
    target = f"{_fk_target(fk.table)} ({quote(fk.column)})"
    return f"CONSTRAINT {quote(name)} FOREIGN KEY ({quote(col)}) REFERENCES {target}{tail}"


def composite_foreign_key_clause(meta: TableMeta, fk: CompositeForeignKey, name: str | None = None) -> str:
    name = name or object_name(meta.name, fk.columns, "fkey")
    action = normal_on_delete(ForeignKey(fk.table, fk.ref_columns[0], fk.on_delete))
    tail = f" ON DELETE {action}" if action else ""
    target = f"{_fk_target(fk.table)} ({_columns(fk.ref_columns)})"
    return f"CONSTRAINT {quote(name)} FOREIGN KEY ({_columns(fk.columns)}) REFERENCES {target}{tail}"


def check_clause(check: Check) -> str:
    if ";" in check.expression:
        raise MigrationError(f"check {check.name}: an expression cannot hold ';'")
    return f"CONSTRAINT {quote(check.name)} CHECK ({check.expression})"


def check_expression(constraintdef: str) -> str:
    """The expression of ``pg_get_constraintdef()`` output (``CHECK ((a > 0))`` -> ``a > 0``)."""
    text = " ".join(constraintdef.split())
    text = text.removesuffix(" NOT VALID")
    if text.upper().startswith("CHECK "):
        text = text[6:]
    return _strip_parens(text.strip())


def create_index(meta: TableMeta, columns: tuple[str, ...], name: str | None = None) -> str:
    name = name or object_name(meta.name, columns, "idx")
    return f"CREATE INDEX {quote(name)} ON {table_ref(meta)} ({_columns(columns)});"


def drop_index(meta: TableMeta, name: str) -> str:
    return f"DROP INDEX {qualified(meta.schema, name)};"


def alter(meta: TableMeta, action: str) -> str:
    return f"ALTER TABLE {table_ref(meta)} {action};"


def unique_sets(meta: TableMeta) -> set[tuple[str, ...]]:
    """Every UNIQUE of the table as a column tuple (single-column ones from ``ColumnMeta.unique``)."""
    return {(c.name,) for c in meta.columns if c.unique} | set(meta.unique_together)


def index_sets(meta: TableMeta) -> set[tuple[str, ...]]:
    """Every plain index of the table as a column tuple."""
    return {(c.name,) for c in meta.columns if c.index} | set(meta.indexes)


def drop_table_statement(meta: TableMeta) -> str:
    """``DROP TABLE`` (no CASCADE: the server refuses if something still depends on it)."""
    return f"DROP TABLE {table_ref(meta)};"


def create_table_statements(meta: TableMeta, *, foreign_keys: bool = True) -> list[str]:
    """``CREATE TABLE`` with its keys, then one ``CREATE INDEX`` per index."""
    where = meta.name
    if not meta.columns:
        raise MigrationError(f"table {meta.name}: no columns")
    names = {c.name for c in meta.columns}
    for group in (meta.primary_key, *meta.unique_together, *meta.indexes):
        for col in group:
            if col not in names:
                raise MigrationError(f"table {meta.name}: key or index on unknown column {col!r}")
    lines = [column_definition(c, where) for c in meta.columns]
    if meta.primary_key:
        lines.append(primary_key_clause(meta))
    lines.extend(unique_clause(meta, cols) for cols in sorted(unique_sets(meta)))
    if foreign_keys:
        lines.extend(foreign_key_clause(meta, c.name, c.references) for c in meta.columns if c.references)
        lines.extend(composite_foreign_key_clause(meta, fk) for fk in meta.foreign_keys)
    lines.extend(check_clause(c) for c in meta.checks)
    body = ",\n    ".join(lines)
    statements = [f"CREATE TABLE {table_ref(meta)} (\n    {body}\n);"]
    statements.extend(create_index(meta, cols) for cols in sorted(index_sets(meta)))
    return statements
