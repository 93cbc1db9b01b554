"""The read-only session properties that :class:`Connection` and :class:`AsyncConnection` both show.

Both connection classes hold a sans-IO :class:`~._session.Session` and a ``closed``
flag; what they tell of them (transaction status, backend pid, server parameters...)
is the same and lives here once.
"""

from __future__ import annotations

from ._session import Session

__all__ = ["SessionView"]


class SessionView:
    """Properties read from the connection's :class:`~._session.Session` (a mixin; no state of its own)."""

    __slots__ = ()

    _session: Session
    _closed: bool

    @property
    def closed(self) -> bool:
        """Whether the connection was closed (by ``close()`` or because it was lost)."""
        return self._closed

    @property
    def session(self) -> Session:
        """The sans-IO protocol state: what the operation generators run on."""
        return self._session

    @property
    def transaction_status(self) -> str:
        """``I`` idle, ``T`` in a transaction block, ``E`` in a failed block (from the last ReadyForQuery)."""
        return self._session.status

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction block is open (possibly failed)."""
        return self._session.status != "I"

    @property
    def backend_pid(self) -> int:
        """Process id of the server backend."""
        return self._session.backend_pid

    @property
    def auth_method(self) -> str:
        """How the session authenticated.

        One of ``trust``, ``cleartext``, ``md5``, ``SCRAM-SHA-256``, ``SCRAM-SHA-256-PLUS``.
        """
        return self._session.auth_method

    @property
    def parameters(self) -> dict[str, str]:
        """Server parameters reported by ParameterStatus (``server_version``, ``TimeZone``...)."""
        return dict(self._session.parameters)
