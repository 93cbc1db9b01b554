"""PgRevocations against the machine's PostgreSQL: LISTEN/NOTIFY between connections, loading, fork, loss."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from auth_testing import SECRET, free_port
from chopin_auth import JwtManager, RevocationUnavailable, TokenBlacklist, init_jwt_manager
from chopin_auth.revocation_pg import PgRevocations
from chopin_core import TestClient
from chopin_pg import connect

BOUND = 5.0  # seconds a notification may take on a loaded machine (it takes well under 1 ms when idle)


@pytest.fixture
def dsn(local_pg) -> str:  # type: ignore[no-untyped-def]
    return str(local_pg.dsn())


@pytest.fixture
def table(dsn: str) -> Iterator[str]:
    name = f"auth_revoked_{uuid.uuid4().hex[:12]}"
    yield name
    with connect(dsn) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def pg(dsn: str, table: str) -> Iterator[Callable[..., PgRevocations]]:
    """``pg(**options)``: a PgRevocations on the test's table, closed at teardown."""
    made: list[PgRevocations] = []

    def make(**options: Any) -> PgRevocations:
        backend = PgRevocations(dsn, table=table, **options)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def eventually(check, bound: float = BOUND) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return bool(check())


def test_a_revocation_reaches_another_connection(dsn: str, table: str, pg: Callable[..., PgRevocations]) -> None:
    a = TokenBlacklist(pg())
    b = TokenBlacklist(pg())
    assert not a.is_revoked("j1") and not b.is_revoked("j1")  # both connected and listening
    a.revoke("j1", time.time() + 600)
    assert a.is_revoked("j1")  # at once in the revoking process
    started = time.monotonic()
    assert eventually(lambda: b.is_revoked("j1"))
    assert time.monotonic() - started < BOUND
    assert len(b) == 1


def test_a_new_backend_loads_unexpired_rows(dsn: str, table: str, pg: Callable[..., PgRevocations]) -> None:
    a = TokenBlacklist(pg())
    a.revoke("live", time.time() + 600)
    a.revoke("forever", None)
    a.revoke("dead", time.time() - 1)
    fresh = TokenBlacklist(pg())
    assert fresh.is_revoked("live") and fresh.is_revoked("forever")
    assert not fresh.is_revoked("dead")
    assert len(fresh) == 2


def test_cleanup_deletes_expired_rows(dsn: str, table: str, pg: Callable[..., PgRevocations]) -> None:
    clock = [time.time()]
    blacklist = TokenBlacklist(pg(), clock=lambda: clock[0])
    blacklist.revoke("soon", clock[0] + 5)
    blacklist.revoke("later", clock[0] + 600)
    clock[0] += 10
    assert not blacklist.is_revoked("soon")
    assert blacklist.cleanup() == 1
    with connect(dsn) as conn:
        assert [r[0] for r in conn.query(f"SELECT jti FROM {table}")] == ["later"]


def test_the_later_expiry_wins_in_the_table(dsn: str, table: str, pg: Callable[..., PgRevocations]) -> None:
    blacklist = TokenBlacklist(pg())
    blacklist.revoke("j", time.time() + 600)
    blacklist.revoke("j", time.time() + 5)
    with connect(dsn) as conn:
        left = conn.query_scalar(f"SELECT extract(epoch FROM expires_at - now())::float8 FROM {table}")
    assert left > 500


def test_after_fork_the_child_opens_its_own_connection(dsn: str, table: str, pg: Callable[..., PgRevocations]) -> None:
    backend = pg()
    blacklist = TokenBlacklist(backend)
    blacklist.revoke("before-fork", time.time() + 600)
    assert backend._conn is not None
    parent_backend_pid = backend._conn.backend_pid
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report (sees the old revocation, has a new session), then exit without cleanup
        code = 1
        try:
            seen = blacklist.is_revoked("before-fork")
            assert backend._conn is not None
            own = backend._conn.backend_pid != parent_backend_pid
            blacklist.revoke("from-child", time.time() + 600)
            code = 0 if seen and own else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == bytes([0])
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    # the parent's session survived the child's exit and hears the child's revocation
    assert eventually(lambda: blacklist.is_revoked("from-child"))
    assert backend._conn is not None and backend._conn.backend_pid == parent_backend_pid


def test_a_lost_connection_is_replaced_and_reloaded(dsn: str, table: str, pg: Callable[..., PgRevocations]) -> None:
    backend = pg()
    blacklist = TokenBlacklist(backend)
    assert not blacklist.is_revoked("x")
    assert backend._conn is not None
    victim = backend._conn.backend_pid
    other = TokenBlacklist(pg())
    with connect(dsn) as admin:
        admin.query("SELECT pg_terminate_backend($1)", (victim,))
    other.revoke("while-lost", time.time() + 600)  # its notification cannot reach the dead session
    assert eventually(lambda: blacklist.is_revoked("while-lost"))
    assert backend._conn is not None and backend._conn.backend_pid != victim


def test_unreachable_database_fails_closed() -> None:
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/test?connect_timeout=2"
    blacklist = TokenBlacklist(PgRevocations(dead))  # never connects: nothing to close
    with pytest.raises(RevocationUnavailable, match="cannot connect"):
        blacklist.is_revoked("j")
    manager = JwtManager(SECRET).with_blacklist(blacklist)
    init_jwt_manager(manager)
    from auth_apps.guarded import build_router

    response = TestClient(build_router()).get(
        "/me", headers={"Authorization": f"Bearer {manager.encode({'sub': 'a', 'role': 'r'})}"}
    )
    assert response.status == 503
    assert response.header("Retry-After") == "1"


def test_poll_interval_limits_reads(dsn: str, table: str, pg: Callable[..., PgRevocations]) -> None:
    a = TokenBlacklist(pg())
    b = TokenBlacklist(pg(poll_interval=0.5))
    assert not b.is_revoked("j")  # reads now; the next read is due in 0.5 s
    a.revoke("j", time.time() + 600)
    assert eventually(lambda: b.is_revoked("j"), BOUND + 0.5)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        PgRevocations(max_entries=0)
    with pytest.raises(ValueError, match="poll_interval"):
        PgRevocations(poll_interval=-1)
    with pytest.raises(ValueError, match="table"):
        PgRevocations(table="x" * 64)


def test_max_entries_per_worker(dsn: str, table: str, pg: Callable[..., PgRevocations]) -> None:
    from chopin_auth import BlacklistFull

    blacklist = TokenBlacklist(pg(max_entries=2))
    blacklist.revoke("a", time.time() + 600)
    blacklist.revoke("b", time.time() + 600)
    with pytest.raises(BlacklistFull, match=r"max_entries \(2\)"):
        blacklist.revoke("c", time.time() + 600)
    blacklist.revoke("a", time.time() + 900)  # already held: not a new entry
