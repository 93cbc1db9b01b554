"""The ``@model`` decorator: a dataclass declared as a table.

``@model(table="items")`` on a ``@dataclass`` reads the fields (annotations and
``column()`` options), sets ``cls.__chopin_table__`` to the :class:`~chopin_orm.schema.TableMeta`
the migration generator reads, replaces each field's class attribute with a
:class:`~chopin_orm.expr.Column` (so ``Item.quantity < 5`` builds SQL), compiles the row
mappers once, and attaches the persistence methods (``insert``, ``get``, ``query``...).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from typing import Any, TypeVar, overload

from . import _codegen
from ._migration_sql import factory_literal, names_enum_type, sql_literal
from ._typemap import TypeSpec, map_annotation
from .errors import ModelError
from .expr import Column, SlotColumn, quote_identifier
from .fields import ON_DELETE_ACTIONS, ColumnOptions, options_of
from .schema import META_ATTR, Check, ColumnMeta, CompositeForeignKey, ForeignKey, TableMeta

__all__ = ["FieldInfo", "ModelInfo", "model", "model_info"]

T = TypeVar("T")

INFO_ATTR = "__chopin_model__"

# Names PostgreSQL accepts unquoted are not required (identifiers are always quoted),
# but a table or column name must be printable and at most NAMEDATALEN-1 bytes.
_NAME = re.compile(r"^[^\x00-\x1f\"]{1,63}$")


@dataclasses.dataclass(frozen=True, slots=True)
class FieldInfo:
    """One mapped field: the dataclass attribute and its column."""

    attr: str
    name: str
    sql_type: str
    nullable: bool
    options: ColumnOptions
    from_db: Callable[[Any], Any] | None
    to_db: Callable[[Any], Any] | None

    @property
    def generated(self) -> bool:
        """An identity column: never inserted, read back with RETURNING."""
        return self.options.generated

    @property
    def server_default(self) -> str | None:
        """The SQL default expression, if any."""
        return self.options.server_default

    @property
    def quoted(self) -> str:
        """The quoted column name."""
        return quote_identifier(self.name)


class ModelInfo:
    """Everything the ORM derives from a model once, at decoration time.

    Attributes:
        cls: The model class.
        meta: Its ``TableMeta``.
        fields: Mapped fields in declaration order.
        table_sql: The quoted (schema-qualified) table name.
        columns_by_attr: ``Column`` objects by attribute name.
        pk: The primary-key fields.
        select_list: ``"t"."a", "t"."b", ...`` in field order.
        decode: values tuple -> model instance (generated).
        decode_rows: list of chopin-pg rows -> list of instances (generated).
        to_row: instance -> tuple of driver values in field order (generated).
        to_copy_row: as ``to_row`` with jsonb values as JSON text, for COPY (generated).
    """

    def __init__(self, cls: type, meta: TableMeta, fields: tuple[FieldInfo, ...], slots: bool) -> None:
        self.cls = cls
        self.meta = meta
        self.fields = fields
        self.slots = slots
        schema = f"{quote_identifier(meta.schema)}." if meta.schema else ""
        self.table_sql = schema + quote_identifier(meta.name)
        self.by_attr = {f.attr: f for f in fields}
        self.pk = tuple(f for f in fields if f.options.primary_key)
        self.columns_by_attr: dict[str, Column] = {}
        self.select_list = ", ".join(f"{self.table_sql}.{f.quoted}" for f in fields)
        # Per-model caches of generated SQL and decoders (deliberate, bounded by the model's shape).
        self.sql_cache: dict[Any, str] = {}
        self._decoders_at: dict[tuple[int, bool], Callable[[tuple[Any, ...]], Any]] = {}
        self._codes: list[_codegen.FieldCode] = []
        self.decode: Callable[[tuple[Any, ...]], Any] = _unset
        self.decode_rows: Callable[[list[Any]], list[Any]] = _unset
        self.to_row: Callable[[Any], tuple[Any, ...]] = _unset
        self.to_copy_row: Callable[[Any], tuple[Any, ...]] = _unset

    def compile(self, setters: dict[str, Callable[[Any, Any], None]]) -> None:
        """Generate and compile the row mappers."""
        label = f"{self.cls.__module__}.{self.cls.__qualname__}"
        self._codes = [
            _codegen.FieldCode(f.attr, f.from_db, f.to_db, setters.get(f.attr), f.sql_type in ("jsonb", "json"))
            for f in self.fields
        ]
        src, glb = _codegen.decoder_source(self.cls, self._codes, 0, None)
        self.decode = _codegen.compile_unit(src, glb, f"decode {label}", "decode")
        self._decoders_at[(0, False)] = self.decode
        src, glb = _codegen.rows_decoder_source(self.cls, self._codes)
        self.decode_rows = _codegen.compile_unit(src, glb, f"decode_rows {label}", "decode_rows")
        src, glb = _codegen.to_row_source(self._codes, for_copy=False)
        self.to_row = _codegen.compile_unit(src, glb, f"to_row {label}", "to_row")
        src, glb = _codegen.to_row_source(self._codes, for_copy=True)
        self.to_copy_row = _codegen.compile_unit(src, glb, f"to_copy_row {label}", "to_row")

    def decoder_at(self, offset: int, nullable: bool) -> Callable[[tuple[Any, ...]], Any]:
        """A decoder reading this model from ``v[offset:]``; ``nullable``: NULL primary key gives ``None``."""
        key = (offset, nullable)
        decode = self._decoders_at.get(key)
        if decode is None:
            null_check = None
            if nullable:
                null_check = self.fields.index(self.pk[0]) if self.pk else 0
            src, glb = _codegen.decoder_source(self.cls, self._codes, offset, null_check)
            label = f"decode {self.cls.__module__}.{self.cls.__qualname__} at {offset}"
            decode = self._decoders_at[key] = _codegen.compile_unit(src, glb, label, "decode")
        return decode

    def column(self, attr: str) -> Column:
        """The ``Column`` for an attribute name.

        Raises:
            ModelError: The model has no such field.
        """
        try:
            return self.columns_by_attr[attr]
        except KeyError:
            names = ", ".join(self.columns_by_attr)
            raise ModelError(f"{self.cls.__qualname__} has no field {attr!r}; fields: {names}") from None

    def require_pk(self, what: str) -> tuple[FieldInfo, ...]:
        """The primary key, or ``ModelError`` naming the operation that needed one."""
        if not self.pk:
            raise ModelError(f"{self.cls.__qualname__}.{what}: the model declares no primary key")
        return self.pk

    def __repr__(self) -> str:
        return f"ModelInfo({self.cls.__qualname__}, table={self.meta.name!r})"


def _unset(*args: Any) -> Any:
    raise ModelError("model row mappers are not compiled yet")


def model_info(cls: type) -> ModelInfo:
    """The :class:`ModelInfo` of a ``@model`` class.

    Raises:
        ModelError: ``cls`` is not a model.
    """
    info = cls.__dict__.get(INFO_ATTR) if isinstance(cls, type) else None
    if not isinstance(info, ModelInfo):
        name = getattr(cls, "__qualname__", repr(cls))
        raise ModelError(f"{name} is not a chopin-orm model (decorate it with @model)")
    return info


def _check_name(kind: str, name: str, where: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ModelError(f"{where}: invalid {kind} name {name!r} (1-63 printable characters, no double quote)")
    return name


def _foreign_key(options: ColumnOptions, where: str) -> ForeignKey | None:
    ref = options.references
    if ref is None:
        return None
    if isinstance(ref, str):
        table, dot, column = ref.rpartition(".")
        if not dot or not table or not column:
            raise ModelError(f"{where}: references={ref!r}: expected 'table.column' or a model class")
        return ForeignKey(table, column, options.on_delete)
    target = model_info(ref)
    if len(target.pk) != 1:
        raise ModelError(f"{where}: references {ref.__qualname__}, which needs exactly one primary-key column")
    table = f"{target.meta.schema}.{target.meta.name}" if target.meta.schema else target.meta.name
    return ForeignKey(table, target.pk[0].name, options.on_delete)


def _field_info(cls: type, field: dataclasses.Field[Any], hints: dict[str, Any]) -> tuple[FieldInfo, ColumnMeta]:
    where = f"{cls.__qualname__}.{field.name}"
    options = options_of(field)
    name = _check_name("column", options.name or field.name, where)
    annotation = hints.get(field.name, field.type)
    try:
        spec = map_annotation(annotation, where)
    except ModelError:
        if options.sql_type is None:
            raise
        spec = TypeSpec(options.sql_type, False)
    sql_type = options.sql_type or spec.sql_type
    nullable = spec.nullable and not options.primary_key
    if options.primary_key and options.generated and spec.nullable:
        nullable = False  # `id: int | None = None` only means "not assigned yet"
    default_sql = options.server_default
    if options.generated and sql_type not in ("smallint", "integer", "bigint"):
        raise ModelError(f"{where}: generated=True (identity) needs an integer type, got {sql_type!r}")
    info = FieldInfo(field.name, name, sql_type, nullable, options, spec.from_db, spec.to_db)
    meta = ColumnMeta(
        name=name,
        attr=field.name,
        sql_type=sql_type,
        nullable=nullable,
        primary_key=options.primary_key,
        identity=options.generated,
        default_sql=default_sql,
        unique=options.unique,
        index=options.index,
        references=_foreign_key(options, where),
        # sql_type= on an Enum field renames its enum type (or stores it as text).
        enum_values=spec.enum_values if options.sql_type is None or names_enum_type(sql_type) else (),
        backfill_sql=_backfill(field, sql_type),
    )
    return info, meta


def _backfill(field: dataclasses.Field[Any], sql_type: str) -> str | None:
    if field.default is not dataclasses.MISSING:
        return sql_literal(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return factory_literal(field.default_factory, sql_type)
    return None


def _build(
    cls: type[T],
    table: str | None,
    schema: str | None,
    unique_together: tuple[tuple[str, ...], ...],
    indexes: tuple[tuple[str, ...], ...],
    checks: tuple[Check, ...] = (),
    foreign_keys: tuple[CompositeForeignKey, ...] = (),
) -> type[T]:
    if not isinstance(cls, type) or not dataclasses.is_dataclass(cls):
        name = getattr(cls, "__qualname__", cls)
        raise ModelError(f"@model: {name!r} is not a dataclass (put @model above @dataclass)")
    where = cls.__qualname__
    table_name = _check_name("table", table or _default_table(cls.__name__), where)
    if schema is not None:
        _check_name("schema", schema, where)
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:
        raise ModelError(f"{where}: cannot resolve annotations: {exc}") from exc
    infos: list[FieldInfo] = []
    metas: list[ColumnMeta] = []
    for field in dataclasses.fields(cls):
        field_info, column_meta = _field_info(cls, field, hints)
        infos.append(field_info)
        metas.append(column_meta)
    if not infos:
        raise ModelError(f"{where}: a model needs at least one field")
    names = [m.name for m in metas]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ModelError(f"{where}: column name(s) used twice: {', '.join(sorted(duplicates))}")
    attrs = {i.attr: i.name for i in infos}
    unique_cols = tuple(tuple(_column_of(attrs, a, where) for a in group) for group in unique_together)
    index_cols = tuple(tuple(_column_of(attrs, a, where) for a in group) for group in indexes)
    for check in checks:
        if not isinstance(check, Check):
            raise ModelError(f"{where}: checks= takes Check values, got {check!r}")
        _check_name("constraint", check.name, where)
    fks = []
    for fk in foreign_keys:
        if not isinstance(fk, CompositeForeignKey) or len(fk.columns) != len(fk.ref_columns) or not fk.columns:
            raise ModelError(
                f"{where}: foreign_keys= takes CompositeForeignKey values with as many columns as ref_columns"
            )
        if fk.on_delete is not None and fk.on_delete.upper() not in ON_DELETE_ACTIONS:
            raise ModelError(f"{where}: foreign key on {fk.columns}: unknown ON DELETE action {fk.on_delete!r}")
        cols = tuple(_column_of(attrs, a, where) for a in fk.columns)
        fks.append(dataclasses.replace(fk, columns=cols, on_delete=fk.on_delete and fk.on_delete.upper()))
    meta = TableMeta(
        name=table_name,
        columns=tuple(metas),
        primary_key=tuple(m.name for m in metas if m.primary_key),
        schema=schema,
        unique_together=unique_cols,
        indexes=index_cols,
        checks=tuple(checks),
        foreign_keys=tuple(fks),
    )
    slots = "__slots__" in cls.__dict__
    info = ModelInfo(cls, meta, tuple(infos), slots)
    setters: dict[str, Callable[[Any, Any], None]] = {}
    for f in infos:
        if slots:
            member = cls.__dict__[f.attr]
            setters[f.attr] = member.__set__
            column: Column = SlotColumn(member, cls, f.attr, f.name, info.table_sql, f.to_db)
        else:
            column = Column(cls, f.attr, f.name, info.table_sql, f.to_db)
        info.columns_by_attr[f.attr] = column
        setattr(cls, f.attr, column)
    info.compile(setters)
    setattr(cls, META_ATTR, meta)
    setattr(cls, INFO_ATTR, info)
    from .persistence import attach_methods

    attach_methods(cls)
    return cls


def _column_of(attrs: dict[str, str], attr: str, where: str) -> str:
    if attr in attrs:
        return attrs[attr]
    if attr in attrs.values():
        return attr
    raise ModelError(f"{where}: unique_together/indexes/foreign_keys name {attr!r}, which is not a field")


def _default_table(class_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()


@overload
def model(cls: type[T], /) -> type[T]: ...
@overload
def model(
    *,
    table: str | None = None,
    schema: str | None = None,
    unique_together: tuple[tuple[str, ...], ...] = (),
    indexes: tuple[tuple[str, ...], ...] = (),
    checks: tuple[Check, ...] = (),
    foreign_keys: tuple[CompositeForeignKey, ...] = (),
) -> Callable[[type[T]], type[T]]: ...
def model(
    cls: type[T] | None = None,
    /,
    *,
    table: str | None = None,
    schema: str | None = None,
    unique_together: tuple[tuple[str, ...], ...] = (),
    indexes: tuple[tuple[str, ...], ...] = (),
    checks: tuple[Check, ...] = (),
    foreign_keys: tuple[CompositeForeignKey, ...] = (),
) -> type[T] | Callable[[type[T]], type[T]]:
    """Declare a dataclass as a model: ``@model(table="items")`` above ``@dataclass``.

    Args:
        cls: The dataclass (when used bare, ``@model``).
        table: The table name (default: the class name in snake_case).
        schema: The schema (default: the ``search_path``'s first).
        unique_together: Groups of fields unique together.
        indexes: Groups of fields with a multi-column index.
        checks: Named ``CHECK`` constraints (``Check("stock_nonneg", "quantity >= 0")``).
        foreign_keys: Multi-column foreign keys (``CompositeForeignKey(("a", "b"), "t", ("x", "y"))``).

    Returns:
        The same class, with ``__chopin_table__``, ``Column`` class attributes and the
        persistence methods (``insert``, ``update``, ``upsert``, ``delete``, ``refresh``,
        ``get``, ``get_or_none``, ``insert_many``, ``query``).

    Raises:
        ModelError: The class is not a dataclass or a field cannot be mapped.
    """

    def wrap(c: type[T]) -> type[T]:
        return _build(c, table, schema, unique_together, indexes, checks, foreign_keys)

    if cls is not None:
        return wrap(cls)
    return wrap
