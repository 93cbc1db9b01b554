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

from .errors import MigrationError, ModelError, MultipleRows, NotFound, OrmError
from .executor import Executor
from .expr import Column, Expr, Ordering, Raw, col
from .fields import ColumnOptions, column
from .model import ModelInfo, model, model_info
from .persistence import (
    Model,
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
from .query import Query
from .schema import ColumnMeta, ForeignKey, TableMeta, table_meta
from .transaction import Transaction, transaction

__all__ = [
    "Column",
    "ColumnMeta",
    "ColumnOptions",
    "Executor",
    "Expr",
    "ForeignKey",
    "MigrationError",
    "Model",
    "ModelError",
    "ModelInfo",
    "MultipleRows",
    "NotFound",
    "Ordering",
    "OrmError",
    "Query",
    "Raw",
    "TableMeta",
    "Transaction",
    "col",
    "column",
    "delete",
    "get",
    "get_many",
    "get_or_none",
    "insert",
    "insert_many",
    "model",
    "model_info",
    "refresh",
    "table_meta",
    "transaction",
    "update",
    "update_many",
    "upsert",
]
