"""libpq's connection features: key=value strings, unknown parameters refused locally, service
files and the password file (with its permission check), against the local server and a private
cluster with password authentication."""

from __future__ import annotations

from pathlib import Path

import pytest
from chopin_pg import AuthenticationFailed, ConfigError, PgConfig, ServerError, connect
from chopin_pg._conninfo import parse_keyword_value
from chopin_testkit import LocalPg, PgCluster


def test_key_value_strings_are_parsed_as_libpq_does() -> None:
    assert parse_keyword_value("host=db  port = 5433 dbname='my db' password='it\\'s' user=a\\ b") == {
        "host": "db",
        "port": "5433",
        "dbname": "my db",
        "password": "it's",
        "user": "a b",
    }
    cfg = PgConfig.from_url(
        "host=/tmp port=6000 dbname=app user=u connect_timeout=0 options='-c search_path=s'", environ={}
    )
    assert (cfg.host, cfg.port, cfg.database, cfg.user, cfg.connect_timeout) == ("/tmp", 6000, "app", "u", None)
    assert cfg.startup_params()["options"] == "-c search_path=s"
    for bad in ("host", "host=a port", "user='unterminated"):
        with pytest.raises(ConfigError):
            parse_keyword_value(bad)


def test_unknown_and_unsupported_parameters_are_refused_locally_by_name() -> None:
    with pytest.raises(ConfigError, match="hots, nonsense"):
        PgConfig.from_url("hots=db nonsense=1 user=u", environ={})
    with pytest.raises(ConfigError, match="target_session_attrs"):
        PgConfig.from_url("postgres://u@db/app?target_session_attrs=read-write", environ={})
    with pytest.raises(ConfigError, match="sslcert"):
        PgConfig.from_url("host=db sslcert=client.crt", environ={})
    # A URL's other parameters stay server settings, as before.
    assert PgConfig.from_url("postgres://u@db/app?search_path=s", environ={}).options == {"search_path": "s"}


def test_a_key_value_string_connects(local_pg: LocalPg) -> None:
    text = f"host={local_pg.host} port={local_pg.port} user={local_pg.user} dbname={local_pg.database} sslmode=disable"
    with connect(text) as conn:
        assert conn.query_scalar("SELECT current_database()") == local_pg.database


def test_a_service_file_gives_settings_and_explicit_ones_win(
    local_pg: LocalPg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = tmp_path / "services.conf"
    services.write_text(
        "# comment\n[other]\nhost=nowhere.invalid\n\n"
        f"[app]\nhost={local_pg.host}\nport={local_pg.port}\nuser={local_pg.user}\n"
        "dbname=no_such_db\nsslmode=disable\napplication_name=from-service\n"
    )
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    with connect(f"service=app dbname={local_pg.database}") as conn:
        assert conn.query_scalar("SHOW application_name") == "from-service"
    with connect(f"postgresql:///{local_pg.database}?service=app") as conn:
        assert conn.query_scalar("SELECT current_database()") == local_pg.database
    monkeypatch.setenv("PGSERVICE", "app")
    assert PgConfig.from_env(database="x").application_name == "from-service"
    with pytest.raises(ConfigError, match="service 'missing'"):
        PgConfig.from_url("service=missing")
    services.write_text("[bad]\nhost=x\ntarget_session_attrs=any\n")
    with pytest.raises(ConfigError, match="target_session_attrs"):
        PgConfig.from_url("service=bad")


def test_the_password_file_supplies_the_password_unless_others_can_read_it(
    pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text(
        "# host:port:database:user:password\n"
        "other.example:*:*:scram_user:wrong\n"
        f"{pg_cluster.host}:{pg_cluster.port}:*:scram_user:scram-secret\n"
        "*:*:*:*:also-wrong\n"
    )
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    url = f"postgres://scram_user@{pg_cluster.host}:{pg_cluster.port}/{pg_cluster.database}?sslmode=disable"
    with connect(url) as conn:
        assert conn.auth_method.startswith("SCRAM") and conn.query_scalar("SELECT current_user") == "scram_user"
    passfile.chmod(0o644)
    with pytest.warns(UserWarning, match="group or world access"), pytest.raises((AuthenticationFailed, ServerError)):
        connect(url)
    passfile.chmod(0o600)
    other = tmp_path / "other"
    other.write_text("*:*:*:scram_user:wrong\\:with a colon\n")
    other.chmod(0o600)
    base = f"host={pg_cluster.host} port={pg_cluster.port} user=scram_user dbname={pg_cluster.database} sslmode=disable"
    with pytest.raises(ServerError) as info:  # passfile= wins over PGPASSFILE: its password is refused
        connect(f"{base} passfile={other}")
    assert info.value.sqlstate == "28P01"
    assert PgConfig.from_url(f"{base} passfile={other}").password == "wrong:with a colon"
