"""Several hosts and target_session_attrs: the local server and a private cluster, made read-only
or read-write per database (a role setting), and a pool that follows a simulated failover."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import chopin_pg
import pytest
from chopin_pg import ConfigError, ConnectionLost, PgConfig, PgPool, PgPoolConfig
from chopin_pg._multihost import split_hosts
from chopin_testkit import LocalPg, PgCluster


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
