"""Dataclass models, a query builder, transactions and SQL migrations on chopin-pg."""

from __future__ import annotations

__all__: list[str] = []
