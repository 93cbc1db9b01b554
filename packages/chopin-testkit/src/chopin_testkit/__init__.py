"""Test helpers for Chopin and its users: private PostgreSQL clusters and pytest fixtures."""

from __future__ import annotations

from .errors import ClusterError, TestkitError
from .localpg import LocalPg, ensure_local_pg
from .pgcluster import DEFAULT_USERS, AuthMethod, PgCluster, PgUser, SslMode

#: The distribution version (also in pyproject.toml; tests/integration/test_packaging.py keeps them equal).
__version__ = "0.1.0"

__all__ = [
    "DEFAULT_USERS",
    "AuthMethod",
    "ClusterError",
    "LocalPg",
    "PgCluster",
    "PgUser",
    "SslMode",
    "TestkitError",
    "__version__",
    "ensure_local_pg",
]
