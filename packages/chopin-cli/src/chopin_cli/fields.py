"""``name:type`` field specs of ``chopin generate model``, the ``TableMeta`` they describe, and the model source.

A spec is ``name:type[?][:unique][:index]``: ``?`` makes the column nullable (the field
defaults to ``None``).  Types are the CLI's short names (:data:`FIELD_TYPES`), plus
``varchar(N)`` and ``decimal(P,S)``.  Everything here is pure: text in, metadata and
source text out.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from chopin_orm.schema import ColumnMeta, TableMeta

from .errors import FieldSpecError

__all__ = [
    "FIELD_TYPES",
    "FieldSpec",
    "model_source",
    "parse_field",
    "parse_fields",
    "table_for",
    "table_name_for",
]


@dataclass(frozen=True)
class FieldType:
    """A CLI type: its Python annotation, the import it needs, and its SQL type."""

    annotation: str
    sql_type: str
    imports: tuple[str, ...] = ()
    explicit_sql: bool = False  # the annotation alone maps elsewhere: write column(sql_type=...)


FIELD_TYPES: dict[str, FieldType] = {
    "str": FieldType("str", "text"),
    "text": FieldType("str", "text"),
    "int": FieldType("int", "integer"),
    "bigint": FieldType("int", "bigint", explicit_sql=True),
    "float": FieldType("float", "double precision"),
    "bool": FieldType("bool", "boolean"),
    "decimal": FieldType("Decimal", "numeric", ("from decimal import Decimal",)),
    "date": FieldType("date", "date", ("from datetime import date",)),
    "datetime": FieldType("datetime", "timestamp with time zone", ("from datetime import datetime",)),
    "uuid": FieldType("UUID", "uuid", ("from uuid import UUID",)),
    "json": FieldType("dict[str, Any]", "jsonb", ("from typing import Any",)),
    "bytes": FieldType("bytes", "bytea"),
}
_PARAMETRIC = re.compile(r"(?P<base>varchar|decimal)\((?P<args>[0-9, ]+)\)\Z")
_FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")
_MODEL_NAME = re.compile(r"[A-Z][A-Za-z0-9]{0,62}\Z")
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")
MODIFIERS = ("unique", "index")
#: Fields one model may declare (a guard against a runaway shell expansion).
MAX_FIELDS = 200


@dataclass(frozen=True)
class FieldSpec:
    """One parsed field."""

    name: str
    type_name: str
    field_type: FieldType
    nullable: bool
    unique: bool = False
    index: bool = False


def _parametric(type_name: str, spec: str) -> FieldType | None:
    match = _PARAMETRIC.match(type_name)
    if match is None:
        return None
    args = [a.strip() for a in match.group("args").split(",")]
    if not all(a.isdigit() for a in args):
        return None
    if match.group("base") == "varchar":
        if len(args) != 1 or not 1 <= int(args[0]) <= 10485760:
            raise FieldSpecError(f"field {spec!r}: varchar(N) needs one length in 1..10485760")
        return FieldType("str", f"character varying({int(args[0])})", explicit_sql=True)
    if len(args) != 2 or not 1 <= int(args[0]) <= 1000 or not 0 <= int(args[1]) <= int(args[0]):
        raise FieldSpecError(f"field {spec!r}: decimal(P,S) needs a precision 1..1000 and a scale 0..P")
    return FieldType(
        "Decimal", f"numeric({int(args[0])},{int(args[1])})", ("from decimal import Decimal",), explicit_sql=True
    )


def parse_field(spec: str) -> FieldSpec:
    """Parse one ``name:type[?][:unique][:index]``.

    Raises:
        FieldSpecError: malformed, a bad name, or an unknown type (the message lists the known ones).
    """
    parts = spec.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise FieldSpecError(f"field {spec!r}: expected name:type (e.g. title:str, price:decimal?, email:str:unique)")
    name, type_name, *mods = parts
    if not _FIELD_NAME.match(name) or keyword.iskeyword(name):
        raise FieldSpecError(f"field {spec!r}: {name!r} is not a lower-case identifier")
    if name == "id":
        raise FieldSpecError(f"field {spec!r}: 'id' is added for you (an identity primary key)")
    nullable = type_name.endswith("?")
    type_name = type_name.removesuffix("?").lower()
    field_type = FIELD_TYPES.get(type_name) or _parametric(type_name, spec)
    if field_type is None:
        known = ", ".join([*FIELD_TYPES, "varchar(N)", "decimal(P,S)"])
        raise FieldSpecError(f"field {spec!r}: unknown type {type_name!r} (expected one of: {known})")
    unknown = [m for m in mods if m not in MODIFIERS]
    if unknown:
        raise FieldSpecError(f"field {spec!r}: unknown modifier {unknown[0]!r} (expected unique or index)")
    return FieldSpec(name, type_name, field_type, nullable, "unique" in mods, "index" in mods)


def parse_fields(specs: list[str]) -> list[FieldSpec]:
    """Parse every spec; names must be distinct.

    Raises:
        FieldSpecError: a bad spec, a repeated name, or more than :data:`MAX_FIELDS`.
    """
    if len(specs) > MAX_FIELDS:
        raise FieldSpecError(f"{len(specs)} fields: at most {MAX_FIELDS} per model")
    fields = [parse_field(s) for s in specs]
    seen: set[str] = set()
    for f in fields:
        if f.name in seen:
            raise FieldSpecError(f"field {f.name!r} is given twice")
        seen.add(f.name)
    return fields


def validate_model_name(name: str) -> str:
    """``name`` if it is a CamelCase class name.

    Raises:
        FieldSpecError: it is not.
    """
    if not _MODEL_NAME.match(name):
        raise FieldSpecError(f"model name {name!r}: expected a CamelCase class name (e.g. BlogPost)")
    return name


def snake_case(name: str) -> str:
    """``BlogPost`` -> ``blog_post``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def table_name_for(model_name: str) -> str:
    """The default table of a model: its snake_case name, pluralised (``BlogPost`` -> ``blog_posts``)."""
    base = snake_case(model_name)
    if base.endswith(("s", "x", "z", "ch", "sh")):
        return base + "es"
    if base.endswith("y") and base[-2:-1] not in ("a", "e", "i", "o", "u"):
        return base[:-1] + "ies"
    return base + "s"


def validate_table_name(table: str) -> str:
    """``table`` if it is a lower-case SQL identifier.

    Raises:
        FieldSpecError: it is not.
    """
    if not _TABLE_NAME.match(table):
        raise FieldSpecError(f"table {table!r}: expected a lower-case identifier (letters, digits, _)")
    return table


def table_for(table: str, fields: list[FieldSpec]) -> TableMeta:
    """The ``TableMeta`` of a model with an identity ``id`` primary key and ``fields``, in that order."""
    columns = [ColumnMeta("id", "id", "integer", nullable=False, primary_key=True, identity=True)]
    for f in fields:
        columns.append(
            ColumnMeta(
                f.name,
                f.name,
                f.field_type.sql_type,
                nullable=f.nullable,
                unique=f.unique,
                index=f.index,
            )
        )
    return TableMeta(name=table, columns=tuple(columns), primary_key=("id",))


def _column_call(f: FieldSpec) -> str:
    args = []
    if f.field_type.explicit_sql:
        args.append(f'sql_type="{f.field_type.sql_type}"')
    if f.unique:
        args.append("unique=True")
    if f.index:
        args.append("index=True")
    if f.nullable:
        args.append("default=None")
    return f"column({', '.join(args)})"


def model_source(model_name: str, table: str, fields: list[FieldSpec]) -> str:
    """The module text of a ``@model`` dataclass for ``fields``, inheriting ``chopin_orm.Model``.

    Required fields come first, then nullable ones (they default to ``None``), then the
    ``id`` (a dataclass needs defaulted fields last); SQL column order is the spec order.
    """
    imports = {"from dataclasses import dataclass"}
    for f in fields:
        imports.update(f.field_type.imports)
    stdlib = sorted(imports)
    ordered = [f for f in fields if not f.nullable] + [f for f in fields if f.nullable]
    lines = [
        f'"""The {model_name} model (table ``{table}``), written by ``chopin generate model``."""',
        "",
        "from __future__ import annotations",
        "",
        *stdlib,
        "",
        "from chopin_orm import Model, column, model",
        "",
        "",
        f'@model(table="{table}")',
        "@dataclass",
        # Model gives type checkers the methods @model attaches (item.insert(conn), Item.query()).
        f"class {model_name}(Model):",
        f'    """A row of ``{table}``."""',
        "",
    ]
    for f in ordered:
        annotation = f.field_type.annotation + (" | None" if f.nullable else "")
        lines.append(f"    {f.name}: {annotation} = {_column_call(f)}")
    lines.append("    id: int | None = column(primary_key=True, generated=True, default=None)")
    return "\n".join(lines) + "\n"
