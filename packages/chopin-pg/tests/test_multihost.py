"""Several hosts and target_session_attrs: the local server and a private cluster, made read-only
or read-write per database (a role setting), and a pool that follows a simulated failover."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import chopin_pg
import pytest
from chopin_pg import ConfigError, ConnectionLost, PgConfig, PgPool, PgPoolConfig
from chopin_pg._multihost import split_hosts
from chopin_testkit import ClusterError, LocalPg, PgCluster


def test_host_lists_are_split_per_host() -> None:
    urls, target = split_hosts("postgres://u:p@a:5432,b,[::1]:7/db?sslmode=disable&target_session_attrs=primary")  # type: ignore[misc]
    assert target == "primary"
    assert urls == [
        "postgres://u:p@a:5432/db?sslmode=disable",
        "postgres://u:p@b/db?sslmode=disable",
        "postgres://u:p@[::1]:7/db?sslmode=disable",
    ]
    strings, target = split_hosts("host=a,b port=1,2 user='x y'")  # type: ignore[misc]
    assert target == "any" and [PgConfig.from_url(s, environ={}).port for s in strings] == [1, 2]
    assert PgConfig.from_url(strings[1], environ={}).user == "x y"
    assert split_hosts("postgres://u@a/db") is None and split_hosts("host=a") is None
    with pytest.raises(ConfigError, match="target_session_attrs"):
        split_hosts("postgres://a,b/db?target_session_attrs=master")
    with pytest.raises(ConfigError, match="3 ports for 2 hosts"):
        split_hosts("host=a,b port=1,2,3")


@pytest.fixture
def two_servers(local_pg: LocalPg, pg_cluster: PgCluster) -> Iterator[tuple[str, str, list[chopin_pg.Connection]]]:
    """A database of the same name on the local server (A) and the private cluster (B), user postgres.

    Yields the host list part of a URL, the database name, and admin connections to A and B.
    """
    name = f"mh_{uuid.uuid4().hex[:10]}"
    admins = [
        chopin_pg.connect(local_pg.dsn()),
        chopin_pg.connect(f"postgres://postgres@{pg_cluster.host}:{pg_cluster.port}/postgres?sslmode=disable"),
    ]
    for admin in admins:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{local_pg.host}:{local_pg.port},{pg_cluster.host}:{pg_cluster.port}", name, admins
    finally:
        for admin in admins:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
            admin.close()


def _read_only(admin: chopin_pg.Connection, database: str, on: bool) -> None:
    admin.execute(
        f"ALTER ROLE postgres IN DATABASE {database} SET default_transaction_read_only = {'on' if on else 'off'}"
    )


def _port(conn: chopin_pg.Connection) -> int:
    return int(conn.query_scalar("SELECT current_setting('port')"))


def test_target_session_attrs_picks_the_fitting_host(
    two_servers: tuple[str, str, list[chopin_pg.Connection]], pg_cluster: PgCluster, local_pg: LocalPg
) -> None:
    hosts, db, (a, _) = two_servers
    _read_only(a, db, True)
    url = f"postgres://postgres@{hosts}/{db}?sslmode=disable&connect_timeout=5&target_session_attrs="
    expected = {
        "any": local_pg.port,
        "read-only": local_pg.port,
        "read-write": pg_cluster.port,
        "primary": local_pg.port,
        "prefer-standby": local_pg.port,  # no standby: the first session
    }
    for target, port in expected.items():
        with chopin_pg.connect(url + target) as conn:
            assert _port(conn) == port, target
    with pytest.raises(ConnectionLost, match="no server with target_session_attrs=standby") as info:
        chopin_pg.connect(url + "standby")
    assert "not standby" in str(info.value)
    # A host that does not answer is skipped; the key=value form works the same way.
    with socket_closed_port() as dead:
        text = (
            f"host=127.0.0.1,{pg_cluster.host} port={dead},{pg_cluster.port} user=postgres dbname={db} sslmode=disable"
        )
        with chopin_pg.connect(text) as conn:
            assert _port(conn) == pg_cluster.port


class socket_closed_port:  # noqa: N801 - used as a context manager like a function
    """A TCP port on 127.0.0.1 nothing listens on (bound, then released)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_pool_follows_the_new_read_write_server_after_a_failover(
    two_servers: tuple[str, str, list[chopin_pg.Connection]], pg_cluster: PgCluster, local_pg: LocalPg
) -> None:
    hosts, db, (a, b) = two_servers
    _read_only(b, db, True)  # A is the primary
    url = f"postgres://postgres@{hosts}/{db}?sslmode=disable&target_session_attrs=read-write"
    with PgPool(PgConfig(), PgPoolConfig().connection_info(lambda: url).max_size(2).min_size(1)) as pool:
        pool.fill()
        with pool.get() as conn:
            assert _port(conn) == local_pg.port
            conn.execute("CREATE TABLE t (id int)")
        # "Failover": A is demoted (its sessions end, it turns read-only), B promoted.
        _read_only(a, db, True)
        _read_only(b, db, False)
        # Wait (up to 5 s) until each session has ended, so that the pool finds its socket closed.
        a.query("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1", (db,))
        with pool.get() as conn:  # the dead session is replaced, by one on the new read-write server
            assert _port(conn) == pg_cluster.port
            conn.execute("CREATE TABLE t (id int)")
            conn.execute("INSERT INTO t VALUES (1)")
        assert pool.stats().broken == 1


def test_sqlalchemy_urls_with_several_hosts(
    two_servers: tuple[str, str, list[chopin_pg.Connection]], pg_cluster: PgCluster
) -> None:
    import sqlalchemy as sa
    from sqlalchemy.dialects import registry

    registry.register("postgresql.chopin", "chopin_pg.sqlalchemy", "ChopinDialect")
    hosts, db, (a, _) = two_servers
    _read_only(a, db, True)
    query = "&".join(f"host={h}" for h in hosts.split(","))
    engine = sa.create_engine(
        f"postgresql+chopin://postgres@/{db}?{query}&sslmode=disable&target_session_attrs=read-write"
    )
    try:
        with engine.connect() as c:
            assert int(c.exec_driver_sql("SELECT current_setting('port')").scalar_one()) == pg_cluster.port
    finally:
        engine.dispose()


# -- a real primary and a streaming-replication standby -------------------------------------------


def _wait_until(what: str, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def _replayed(standby: PgCluster, sql: str, expected: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return standby.psql(sql) == expected
        except ClusterError:  # the table has not reached the standby yet
            return False

    return check


@pytest.fixture
def primary_and_standby() -> Iterator[tuple[PgCluster, PgCluster]]:
    """A private primary and a hot standby streaming from it (pg_basebackup), both stopped after."""
    primary = PgCluster(replication=True).start()
    try:
        standby = primary.standby().start()
        try:
            yield primary, standby
        finally:
            standby.stop()
    finally:
        primary.stop()


def test_target_session_attrs_and_pools_across_a_real_failover(
    primary_and_standby: tuple[PgCluster, PgCluster],
) -> None:
    """Both roles told apart by the server itself (in_hot_standby), then a promotion.

    The incident of issue 21 (a pool pinned to a demoted primary for days) is the middle
    part: the old primary is fenced read-only by a reload, not stopped, so the pooled
    sessions on it stay open; the pool's checkout re-check drops them and reconnects
    to the promoted standby.
    """
    primary, standby = primary_and_standby
    p, s = primary.port, standby.port
    host = primary.host

    def url(target: str, ports: tuple[int, int] = (p, s)) -> str:
        hosts = ",".join(f"{host}:{port}" for port in ports)
        return f"postgres://postgres@{hosts}/test?sslmode=disable&connect_timeout=3&target_session_attrs={target}"

    primary.psql("CREATE TABLE events (id int)")
    _wait_until("the standby replays", _replayed(standby, "SELECT count(*) FROM events", "0"))
    expected = {"any": p, "read-write": p, "primary": p, "read-only": s, "standby": s, "prefer-standby": s}
    for ports in ((p, s), (s, p)):  # the answer does not depend on the order of the hosts
        for target, port in expected.items():
            if target == "any":
                port = ports[0]
            with chopin_pg.connect(url(target, ports)) as conn:
                assert _port(conn) == port, (target, ports)
                assert conn.target_session_attrs == target

    pool_config = PgPoolConfig().min_size(2).max_size(2).checkout_timeout(5)
    writers = PgPool(url("read-write"), pool_config)  # used across the fence and promotion
    idle_writers = PgPool(url("read-write"), pool_config)  # untouched until the old primary is gone
    readers = PgPool(url("standby"), pool_config)
    either = PgPool(url("prefer-standby"), pool_config)
    try:
        for pool in (writers, idle_writers, readers, either):
            pool.fill()
        with writers.get() as conn:
            assert _port(conn) == p
            conn.execute("INSERT INTO events VALUES (1)")
        _wait_until("the insert replays", _replayed(standby, "SELECT count(*) FROM events", "1"))
        with readers.get() as conn, either.get() as other:
            assert _port(conn) == _port(other) == s
            assert conn.query_scalar("SELECT count(*) FROM events") == 1

        # Failover: the old primary is fenced (its sessions stay open), the standby promoted.
        primary.psql("ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf();")
        standby.promote()
        with writers.get() as first, writers.get() as second:  # both pooled sessions were on the old primary
            assert _port(first) == _port(second) == s
            first.execute("INSERT INTO events VALUES (2)")
        assert writers.stats().broken == 2
        with chopin_pg.connect(url("read-write")) as conn:
            assert _port(conn) == s
        # No standby is left: a standby pool says so rather than hand out the new primary.
        with pytest.raises(ConnectionLost, match="no server with target_session_attrs=standby"):
            readers.get()
        with either.get() as conn:  # prefer-standby: a session on the new primary is still the best there is
            assert _port(conn) == s

        # The old primary goes away: sessions on it die, and new ones find the new primary.
        primary.stop()
        with chopin_pg.connect(url("read-write")) as conn:
            assert _port(conn) == s
            assert conn.query_scalar("SELECT sum(id) FROM events") == 3
        with idle_writers.get() as first, idle_writers.get() as second:
            assert _port(first) == _port(second) == s
            second.execute("INSERT INTO events VALUES (3)")
        assert idle_writers.stats().broken == 2
    finally:
        for pool in (writers, idle_writers, readers, either):
            pool.close()
