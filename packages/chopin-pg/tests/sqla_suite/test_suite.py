"""SQLAlchemy's dialect test suite, as SQLAlchemy asks third-party dialects to run it.

What our dialect supports is declared in ``sqla_requirements.py``; tests that fail for a
reason that is not the dialect's are listed, with the reason, in the chopin-pg README.
"""

from typing import Any

from chopin_pg.dbapi import ServerCursor
from sqlalchemy.testing.suite import *  # noqa: F403
from sqlalchemy.testing.suite import ServerSideCursorsTest as _ServerSideCursorsTest


class ServerSideCursorsTest(_ServerSideCursorsTest):  # type: ignore[misc]
    """The suite tells a server-side cursor by driver name (its own TODO says third-party
    dialects cannot use it as is); ours is a :class:`chopin_pg.dbapi.ServerCursor`."""

    def _is_server_side(self, cursor: Any) -> bool:
        return isinstance(cursor, ServerCursor)
