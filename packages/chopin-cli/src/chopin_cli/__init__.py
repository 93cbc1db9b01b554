"""The chopin command: new, dev, build, generate, check, deploy, openapi, db, migrate."""

from __future__ import annotations

__version__ = "0.1.0"

from .cli import cli, main
from .errors import (
    AppLoadError,
    CliError,
    DatabaseUnreachable,
    FieldSpecError,
    ProjectError,
    ToolFailed,
    ToolMissing,
)

__all__ = [
    "AppLoadError",
    "CliError",
    "DatabaseUnreachable",
    "FieldSpecError",
    "ProjectError",
    "ToolFailed",
    "ToolMissing",
    "__version__",
    "cli",
    "main",
]
