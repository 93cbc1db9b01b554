"""Dataclass models, a query builder, transactions and SQL migrations on chopin-pg.

```python
@model(table="items")
@dataclass
class Item:
    name: str = column(unique=True)
    quantity: int = column(default=0, index=True)
    id: int | None = column(primary_key=True, generated=True, default=None)

item = Item("pen", 3)
item.insert(conn)  # item.id filled by RETURNING
low = Item.query().filter(Item.quantity < 5).order_by(Item.name).all(conn)
```
"""

from __future__ import annotations

from . import agg
from .autogen import (
    MigrationHints,
    create_table_sql,
    diff,
    drop_table_sql,
    introspect,
    make_migration,
    suggest_renames,
)
from .cursor import RowStream
from .errors import MigrationError, ModelError, MultipleRows, NotFound, OrmError
from .executor import AsyncExecutor, Executor
from .expr import Column, Expr, Ordering, Raw, col
from .fields import ColumnOptions, column
from .migrations import (
    ChecksumMismatch,
    Migration,
    MigrationFailed,
    MigrationLockTimeout,
    MigrationStatus,
    Migrator,
    discover,
    write_migration,
)
from .model import ModelInfo, model, model_info
from .persistence import (
    Model,
    adelete,
    aget,
    aget_many,
    aget_or_none,
    ainsert,
    ainsert_many,
    arefresh,
    aupdate,
    aupdate_many,
    aupsert,
    delete,
    get,
    get_many,
    get_or_none,
    insert,
    insert_many,
    refresh,
    update,
    update_many,
    upsert,
)
from .query import Query, ValuesQuery, related
from .schema import Check, ColumnMeta, CompositeForeignKey, ForeignKey, TableMeta, table_meta
from .transaction import AsyncTransaction, Transaction, atransaction, transaction

#: The distribution version (also in pyproject.toml; tests/integration/test_packaging.py keeps them equal).
__version__ = "0.1.0"

__all__ = [
    "AsyncExecutor",
    "AsyncTransaction",
    "Check",
    "ChecksumMismatch",
    "Column",
    "ColumnMeta",
    "ColumnOptions",
    "CompositeForeignKey",
    "Executor",
    "Expr",
    "ForeignKey",
    "Migration",
    "MigrationError",
    "MigrationFailed",
    "MigrationHints",
    "MigrationLockTimeout",
    "MigrationStatus",
    "Migrator",
    "Model",
    "ModelError",
    "ModelInfo",
    "MultipleRows",
    "NotFound",
    "Ordering",
    "OrmError",
    "Query",
    "Raw",
    "RowStream",
    "TableMeta",
    "Transaction",
    "ValuesQuery",
    "__version__",
    "adelete",
    "aget",
    "aget_many",
    "aget_or_none",
    "agg",
    "ainsert",
    "ainsert_many",
    "arefresh",
    "atransaction",
    "aupdate",
    "aupdate_many",
    "aupsert",
    "col",
    "column",
    "create_table_sql",
    "delete",
    "diff",
    "discover",
    "drop_table_sql",
    "get",
    "get_many",
    "get_or_none",
    "insert",
    "insert_many",
    "introspect",
    "make_migration",
    "model",
    "model_info",
    "refresh",
    "related",
    "suggest_renames",
    "table_meta",
    "transaction",
    "update",
    "update_many",
    "upsert",
    "write_migration",
]
