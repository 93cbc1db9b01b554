"""The chopin command: new, dev, build, generate, check, deploy, openapi, db, migrate."""

from __future__ import annotations

__all__: list[str] = []
