"""Pipelining: many extended-protocol queries sent in one write, their answers read in one loop.

::

    with conn.pipeline() as pl:
        inserted = [pl.execute("INSERT INTO t VALUES ($1)", (i,)) for i in range(1000)]
        total = pl.query("SELECT count(*) FROM t")
    print(total.rows()[0][0], inserted[0].rowcount)

Queries are queued (and encoded) by :meth:`Pipeline.query` / :meth:`Pipeline.execute`,
which return :class:`PendingResult` handles.  Nothing is sent until :meth:`Pipeline.sync`
or the end of the ``with`` block: then the queued queries go out in one write ending
in one Sync, and every handle is resolved from one read loop: one round trip for N
queries.

Errors and transactions: a Sync closes an implicit transaction, so outside
``BEGIN`` the queries between two syncs commit or roll back *together*.  When a
query fails, PostgreSQL skips the rest of the batch up to the Sync: the failing
query's handle raises its own error, every later handle raises
:class:`~chopin_pg.errors.PipelineAborted` ("skipped because query N failed"),
and the effects of the earlier queries of that batch are rolled back (their
results are still readable).  Call :meth:`Pipeline.sync` to make a boundary:
each batch is its own implicit transaction.  Inside an explicit transaction the
failure aborts the transaction block as usual.  :meth:`Pipeline.sync` and the
end of the ``with`` block raise the batch's first error once every handle is
resolved, so a failure is never silent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._pipeline import PipelineBatch, PipelineOp, run_batch
from ._result import Result
from .errors import InterfaceError
from .row import Row

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["PendingResult", "Pipeline"]


class PendingResult:
    """The result of one pipelined query, known once its batch is synced.

    Every accessor raises the query's own error if it failed, or
    :class:`~chopin_pg.errors.PipelineAborted` if the server skipped it.
    """

    __slots__ = ("_op",)

    def __init__(self, op: PipelineOp) -> None:
        self._op = op

    @property
    def index(self) -> int:
        """1-based position of the query in its pipeline."""
        return self._op.index

    @property
    def done(self) -> bool:
        """Whether the outcome is known (the batch was synced)."""
        return self._op.done

    def result(self) -> Result:
        """Return the query's :class:`Result`.

        Raises:
            InterfaceError: The batch was not synced yet.
            PipelineAborted: The server skipped the query because an earlier one failed.
            PgError: The query's own error.
        """
        op = self._op
        if not op.done:
            raise InterfaceError(f"pipeline query {op.index}: no result yet; call sync() or leave the with block")
        if op.error is not None:
            raise op.error
        assert op.result is not None
        return op.result

    def rows(self) -> list[Row]:
        """Return the query's rows (see :meth:`result`)."""
        return self.result().rows

    @property
    def rowcount(self) -> int:
        """The count the command tag carries, or -1 (see :meth:`result`)."""
        return self.result().rowcount

    def __repr__(self) -> str:
        state = "pending" if not self._op.done else ("failed" if self._op.error else "done")
        return f"<PendingResult #{self._op.index} {state}: {self._op.sql[:60]!r}>"


class Pipeline:
    """Queries queued on a connection, sent together at each :meth:`sync`.

    Get one from :meth:`Connection.pipeline`.  While it is open the connection
    refuses its own query methods (their answers would interleave with the
    pipeline's); use the pipeline's.

    Args:
        conn: The connection to pipeline on.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._batch = PipelineBatch(conn.session)
        self._open = False

    def __enter__(self) -> Pipeline:
        self._conn.enter_busy("a pipeline")
        self._open = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            if exc_type is None:
                self.sync()
            else:
                self._abandon()
        finally:
            self._open = False
            self._conn.leave_busy()

    def _abandon(self) -> None:
        # The block raised before the queued queries were sent: they never run.
        for op in self._batch.ops:
            op.fail(InterfaceError(f"pipeline query {op.index} was not sent: the with block raised first"))
        self._batch = PipelineBatch(self._conn.session, self._batch.next_index)

    def _add(self, sql: str, params: Sequence[Any] | None) -> PendingResult:
        if not self._open:
            raise InterfaceError("pipeline is not open: use it as `with conn.pipeline() as pl:`")
        return PendingResult(self._batch.add(sql, () if params is None else params))

    def query(self, sql: str, params: Sequence[Any] | None = ()) -> PendingResult:
        """Queue a query whose rows you want.

        Args:
            sql: One statement with ``$1..$n`` placeholders.
            params: The values (``None`` for NULL); ``params=None`` itself means no parameters.

        Returns:
            The handle, resolved at the next :meth:`sync`.
        """
        return self._add(sql, params)

    def execute(self, sql: str, params: Sequence[Any] | None = ()) -> PendingResult:
        """Queue a statement run for its effect (its handle's :attr:`~PendingResult.rowcount` is the count).

        Args:
            sql: One statement with ``$1..$n`` placeholders.
            params: The values (``None`` for NULL); ``params=None`` itself means no parameters.

        Returns:
            The handle, resolved at the next :meth:`sync`.
        """
        return self._add(sql, params)

    @property
    def pending(self) -> int:
        """How many queries are queued and not sent yet."""
        return len(self._batch)

    def sync(self) -> None:
        """Send the queued queries with one Sync and resolve their handles (one round trip).

        Raises:
            PgError: The first error of the batch (the same exception the failing handle raises),
                after every handle is resolved.
            ConnectionLost: The connection failed; every unresolved handle raises it too.
        """
        batch = self._batch
        self._batch = PipelineBatch(self._conn.session, batch.next_index)
        if not batch.ops:
            return
        try:
            first = self._conn.wait(run_batch(self._conn.session, batch))
        except BaseException as exc:
            for op in batch.ops:
                if not op.done:
                    op.fail(exc)
            raise
        if first is not None:
            raise first
