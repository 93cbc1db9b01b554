"""The testkit's exceptions, rooted in `TestkitError`."""

from __future__ import annotations


class TestkitError(Exception):
    """Base class of every error the testkit raises."""

    __test__ = False  # a class named Test* is not a test class


class ClusterError(TestkitError):
    """A PostgreSQL server could not be set up, started, reached or stopped.

    The message says which step failed and carries the command's output and the
    tail of the server log, so a failing fixture explains itself.
    """
