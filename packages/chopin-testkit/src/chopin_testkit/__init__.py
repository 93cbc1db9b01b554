"""Test helpers for Chopin and its users: private PostgreSQL clusters and pytest fixtures."""

from __future__ import annotations

from .errors import ClusterError, TestkitError
from .localpg import LocalPg, ensure_local_pg
from .pgcluster import DEFAULT_USERS, AuthMethod, PgCluster, PgUser, SslMode

__all__ = [
    "DEFAULT_USERS",
    "AuthMethod",
    "ClusterError",
    "LocalPg",
    "PgCluster",
    "PgUser",
    "SslMode",
    "TestkitError",
    "ensure_local_pg",
]
