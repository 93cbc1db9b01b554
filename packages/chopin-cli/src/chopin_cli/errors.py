"""The chopin-cli exception hierarchy: every error the command reports is a ``CliError``.

A ``CliError`` is shown as one line (``chopin: error: ...``) and ends the command with
its ``exit_code`` (2 for bad input, a missing tool or an unreachable database), never
with a traceback.
"""

from __future__ import annotations

__all__ = [
    "AppLoadError",
    "CliError",
    "DatabaseUnreachable",
    "FieldSpecError",
    "NoProject",
    "ProjectError",
    "SeedFailed",
    "ToolFailed",
    "ToolMissing",
]


class CliError(Exception):
    """Base of every chopin-cli error; ``exit_code`` is what the process exits with."""

    exit_code: int = 2


class ProjectError(CliError):
    """No project here, a bad ``[tool.chopin]`` table, or a file that would be overwritten."""


class NoProject(ProjectError):
    """No ``pyproject.toml`` in the working directory or above."""


class FieldSpecError(CliError, ValueError):
    """A ``name:type`` field of ``chopin generate model`` is malformed or names an unknown type."""


class AppLoadError(CliError):
    """The app object (``module:attr``) could not be imported or is not a Chopin app or Router."""


class ToolMissing(CliError):
    """An external program (``psql``, ``pg_dump``) is not on ``PATH``."""


class DatabaseUnreachable(CliError):
    """``DATABASE_URL`` is missing, malformed, or names a server that does not answer."""


class ToolFailed(CliError):
    """An external program ran and failed (its last error line is in the message)."""

    exit_code = 1


class SeedFailed(CliError):
    """``chopin db seed``: the seeds module's ``seed`` raised, and nothing was committed."""

    exit_code = 1
