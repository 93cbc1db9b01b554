"""Dataclass models, a query builder, transactions and SQL migrations on chopin-pg."""

from __future__ import annotations

from .errors import MigrationError, ModelError, MultipleRows, NotFound, OrmError
from .schema import ColumnMeta, ForeignKey, TableMeta, table_meta

__all__ = [
    "ColumnMeta",
    "ForeignKey",
    "MigrationError",
    "ModelError",
    "MultipleRows",
    "NotFound",
    "OrmError",
    "TableMeta",
    "table_meta",
]
