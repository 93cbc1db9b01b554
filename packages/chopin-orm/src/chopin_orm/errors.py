"""The chopin-orm exception hierarchy: every error the package raises is an ``OrmError``."""

from __future__ import annotations


class OrmError(Exception):
    """Base of every chopin-orm error."""


class ModelError(OrmError, TypeError):
    """A class is not a model, or its declaration is invalid (raised at decoration time)."""


class NotFound(OrmError, LookupError):
    """``get``/``one`` found no row."""


class MultipleRows(OrmError, LookupError):
    """``one`` found more than one row."""


class MigrationError(OrmError):
    """A migration could not be discovered, applied or rolled back."""
