"""Authentication: SCRAM math on the RFC 7677 vector, MD5, SASLprep, then every method on a real cluster."""

from __future__ import annotations

import hashlib
import ssl
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from chopin_pg import AuthenticationFailed, PgConfig, connect
from chopin_pg._session import Session
from chopin_pg.auth import ScramClient, md5_password, saslprep, tls_server_end_point
from chopin_pg.errors import ConfigError, ConnectionLost, ErrorClass, InvalidAuthorization
from chopin_pg.types import DEFAULT_TYPES
from chopin_testkit.tlsfront import TlsFront

# RFC 7677 §3: user "user", password "pencil".
RFC_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_FIRST = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
RFC_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_scram_rfc7677_vector() -> None:
    client = ScramClient("pencil", user="user", nonce=RFC_NONCE)
    assert client.client_first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert client.client_final(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    client.verify_server_final(RFC_SERVER_FINAL)


def test_scram_rejects_wrong_server_signature() -> None:
    client = ScramClient("pencil", user="user", nonce=RFC_NONCE)
    client.client_final(RFC_SERVER_FIRST)
    with pytest.raises(AuthenticationFailed, match="signature does not match"):
        client.verify_server_final(b"v=" + b"A" * 44)


def test_scram_rejects_nonce_not_extending_ours() -> None:
    client = ScramClient("pencil", nonce="abc")
    with pytest.raises(AuthenticationFailed, match="nonce"):
        client.client_final(b"r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")


def test_scram_server_error_attribute() -> None:
    client = ScramClient("pencil", nonce="abc")
    with pytest.raises(AuthenticationFailed, match="invalid-proof"):
        client.verify_server_final(b"e=invalid-proof")


def test_scram_channel_binding_headers() -> None:
    plus = ScramClient("pw", nonce="n", channel_binding=b"\x01\x02")
    assert plus.mechanism == "SCRAM-SHA-256-PLUS"
    assert plus.client_first() == b"p=tls-server-end-point,,n=,r=n"
    final = plus.client_final(b"r=nX,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1")
    # c= is base64 of the GS2 header followed by the binding data.
    import base64

    assert final.startswith(b"c=" + base64.b64encode(b"p=tls-server-end-point,,\x01\x02") + b",")
    assert ScramClient("pw", nonce="n", client_supports_binding=True).client_first() == b"y,,n=,r=n"


def test_tls_server_end_point_defaults_to_sha256() -> None:
    assert tls_server_end_point(b"not a real cert") == hashlib.sha256(b"not a real cert").digest()


def test_md5_password() -> None:
    inner = hashlib.md5(b"secretbob").hexdigest()
    expected = b"md5" + hashlib.md5(inner.encode() + b"abcd").hexdigest().encode()
    assert md5_password("bob", "secret", b"abcd") == expected


def test_saslprep() -> None:
    assert saslprep("I\u00adX") == "IX"  # soft hyphen maps to nothing (RFC 4013 §3 example)
    assert saslprep("user") == "user"
    assert saslprep("\u2168") == "IX"  # NFKC
    assert saslprep("a\u00a0b") == "a b"  # non-ASCII space
    with pytest.raises(ValueError, match="prohibited"):
        saslprep("\u0007")
    with pytest.raises(ValueError, match="RandALCat"):
        saslprep("\u0627\u0031")


# -- against the private cluster (chopin-testkit) -------------------------------------


def cluster_config(pg_cluster: Any, user: str, **kw: Any) -> PgConfig:
    return PgConfig(
        host=pg_cluster.host,
        port=pg_cluster.port,
        user=user,
        password=pg_cluster.users.get(user),
        database=pg_cluster.database,
        connect_timeout=10,
        **kw,
    )


def tls_ends_at_the_server(pg_cluster: Any) -> bool:
    """False on the embedded fallback, whose server lacks OpenSSL: the testkit's TLS front ends TLS."""
    return not pg_cluster.tls_front


def server_sees_tls(pg_cluster: Any) -> None:
    if not tls_ends_at_the_server(pg_cluster):
        pytest.skip("embedded fallback: TLS ends at the testkit's front, so the server's pg_stat_ssl says false")


@pytest.fixture
def binds_to_server_certificate(pg_cluster: Any) -> None:
    if not tls_ends_at_the_server(pg_cluster):
        pytest.skip(
            "embedded fallback: TLS ends at the testkit's front, so the server offers no SCRAM-SHA-256-PLUS "
            "and cannot check a binding to a certificate it never presented"
        )


@pytest.mark.parametrize("sslmode", ["disable", "require"])
@pytest.mark.parametrize("user", ["scram_user", "md5_user", "trust_user"])
def test_password_methods(pg_cluster: Any, user: str, sslmode: str) -> None:
    with connect(cluster_config(pg_cluster, user, sslmode=sslmode)) as conn:
        assert conn.query_scalar("SELECT current_user") == user
        assert conn.ssl_in_use is (sslmode != "disable")
        expected = {"scram_user": "SCRAM-SHA-256", "md5_user": "md5", "trust_user": "trust"}[user]
        # channel_binding=prefer: -PLUS whenever the server offers it, which it does over its own TLS.
        if user == "scram_user" and sslmode != "disable" and tls_ends_at_the_server(pg_cluster):
            expected = "SCRAM-SHA-256-PLUS"
        assert conn.auth_method == expected


@pytest.mark.parametrize("sslmode", ["disable", "require", "verify-ca"])
def test_the_server_sees_the_tls_session(pg_cluster: Any, sslmode: str) -> None:
    if sslmode != "disable":
        server_sees_tls(pg_cluster)
    with connect(pg_cluster.dsn("scram_user", sslmode=sslmode)) as conn:
        assert conn.query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is (sslmode != "disable")


def test_scram_over_unix_socket(pg_cluster: Any) -> None:
    config = cluster_config(pg_cluster, "scram_user").with_socket_dir(str(pg_cluster.socket_dir))
    with connect(config) as conn:
        assert conn.query_scalar("SELECT 1") == 1


@pytest.mark.usefixtures("binds_to_server_certificate")
def test_scram_plus_channel_binding_over_tls(pg_cluster: Any) -> None:
    config = cluster_config(pg_cluster, "scram_user", sslmode="verify-full", sslrootcert=str(pg_cluster.ca_file))
    with connect(config) as conn:
        assert conn.query_scalar("SELECT current_user") == "scram_user"
        # The server checks the tls-server-end-point hash inside the proof: success proves it right.
        assert conn.auth_method == "SCRAM-SHA-256-PLUS"


@pytest.mark.parametrize("user", ["scram_user", "md5_user"])
def test_wrong_password_is_a_server_error(pg_cluster: Any, user: str) -> None:
    config = cluster_config(pg_cluster, user).replace(password="wrong")
    with pytest.raises(InvalidAuthorization) as info:
        connect(config)
    assert info.value.sqlstate == "28P01"
    assert info.value.classify() is ErrorClass.PERMANENT


def test_missing_password(pg_cluster: Any) -> None:
    config = cluster_config(pg_cluster, "scram_user").replace(password=None)
    with pytest.raises(AuthenticationFailed, match="none given"):
        connect(config)


def test_url_from_testkit(pg_cluster: Any) -> None:
    with connect(pg_cluster.dsn("scram_user", sslmode="verify-ca")) as conn:
        assert conn.query_scalar("SELECT current_user") == "scram_user"
        assert conn.ssl_in_use


def test_verify_full_rejects_wrong_host(pg_cluster: Any) -> None:
    config = cluster_config(pg_cluster, "trust_user", sslmode="verify-full", sslrootcert=str(pg_cluster.ca_file))
    # "127.1" reaches 127.0.0.1 (inet_aton's short form) but is no name the certificate holds
    # (localhost, 127.0.0.1). 127.0.0.2 would be refused before TLS: nothing listens there.
    with pytest.raises(ConnectionLost, match=r"CERTIFICATE_VERIFY_FAILED.*[Hh]ostname mismatch") as info:
        connect(config.replace(host="127.1"))
    assert info.value.classify() is ErrorClass.POOL


def test_verify_ca_rejects_unknown_ca(pg_cluster: Any, tmp_path: Any) -> None:
    # A CA bundle that does not hold the cluster's CA: the system store (empty file is invalid).
    config = cluster_config(
        pg_cluster, "trust_user", sslmode="verify-ca", sslrootcert=ssl.get_default_verify_paths().cafile
    )
    with pytest.raises(ConnectionLost, match="CERTIFICATE_VERIFY_FAILED"):
        connect(config)


def test_prefer_and_require_against_plain_server(config: PgConfig) -> None:
    tcp = config.replace(host="127.0.0.1", sslmode="prefer")
    with connect(tcp) as conn:
        assert conn.query_scalar("SELECT 1") == 1
    with pytest.raises(ConnectionLost, match="does not support TLS"):
        connect(tcp.replace(sslmode="require"))


# -- channel_binding (libpq's disable / prefer / require) --------------------------------
#
# Sans-IO first: the startup generator against scripted server messages, to pin what is
# sent (nothing after the StartupMessage when `require` cannot be met); then the real
# cluster over TLS and plain TCP.

CERT = b"0\x82 a certificate"  # any bytes: the hash is all the client takes from it


def backend(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack("!i", len(body) + 4) + body


def auth_sasl(*mechanisms: str) -> bytes:
    return backend(b"R", struct.pack("!i", 10) + b"".join(m.encode() + b"\0" for m in mechanisms) + b"\0")


AUTH_OK = backend(b"R", struct.pack("!i", 0))
AUTH_MD5 = backend(b"R", struct.pack("!i", 5) + b"salt")
AUTH_CLEARTEXT = backend(b"R", struct.pack("!i", 3))
READY = backend(b"Z", b"I")


def run_startup(config: PgConfig, cert: bytes | None, server: bytes) -> Iterator[bytes]:
    """Drive Session.startup: yield each message the client sends; the server says `server`, then nothing."""
    gen = Session(config, DEFAULT_TYPES.copy()).startup(cert)
    pending = [server]
    request = next(gen)
    while True:
        if request is None:
            request = gen.send(pending.pop() if pending else b"")
        else:
            yield request
            request = gen.send(None)


def sent_until_refused(config: PgConfig, cert: bytes | None, server: bytes) -> tuple[list[bytes], str]:
    sent: list[bytes] = []
    with pytest.raises(AuthenticationFailed) as info:
        for message in run_startup(config, cert, server):
            sent.append(message)
    return sent, str(info.value)


REQUIRE = PgConfig(user="u", password="pw", database="d", channel_binding="require")


@pytest.mark.parametrize(
    ("cert", "server", "reason"),
    [
        (None, auth_sasl("SCRAM-SHA-256"), "does not use TLS"),
        (None, auth_sasl("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"), "does not use TLS"),
        (CERT, auth_sasl("SCRAM-SHA-256"), "not SCRAM-SHA-256-PLUS"),
        (CERT, AUTH_MD5, "AuthenticationMD5Password"),
        (CERT, AUTH_CLEARTEXT, "AuthenticationCleartextPassword"),
        (CERT, AUTH_OK + READY, "without channel binding (method trust)"),
    ],
)
def test_require_sends_no_password_when_binding_cannot_happen(cert: bytes | None, server: bytes, reason: str) -> None:
    sent, message = sent_until_refused(REQUIRE, cert, server)
    assert message.startswith("channel_binding=require: ")
    assert reason in message
    assert len(sent) == 1 and sent[0][4:8] == struct.pack("!i", 196608)  # the StartupMessage only


@pytest.mark.parametrize(
    ("mode", "cert", "offer", "mechanism", "gs2"),
    [
        ("require", CERT, ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"), b"SCRAM-SHA-256-PLUS", b"p=tls-server-end-point,,"),
        ("prefer", CERT, ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"), b"SCRAM-SHA-256-PLUS", b"p=tls-server-end-point,,"),
        ("prefer", CERT, ("SCRAM-SHA-256",), b"SCRAM-SHA-256", b"y,,"),  # could have bound: says so
        ("prefer", None, ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"), b"SCRAM-SHA-256", b"n,,"),
        ("disable", CERT, ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"), b"SCRAM-SHA-256", b"n,,"),
    ],
)
def test_mechanism_and_gs2_flag_per_mode(
    mode: str, cert: bytes | None, offer: tuple[str, ...], mechanism: bytes, gs2: bytes
) -> None:
    config = REQUIRE.replace(channel_binding=mode)
    messages = run_startup(config, cert, auth_sasl(*offer))
    next(messages)  # StartupMessage
    initial = next(messages)  # SASLInitialResponse: 'p', length, mechanism NUL, data length, data
    name, _, rest = initial[5:].partition(b"\0")
    assert initial[:1] == b"p" and name == mechanism
    assert rest[4:].startswith(gs2 + b"n=,r="), initial


def test_channel_binding_setting_from_url_string_and_environment() -> None:
    assert PgConfig(user="u").channel_binding == "prefer"
    assert PgConfig.from_url("postgres://u@h/d?channel_binding=require", environ={}).channel_binding == "require"
    assert PgConfig.from_url("host=h user=u channel_binding=disable", environ={}).channel_binding == "disable"
    assert PgConfig.from_env({"PGUSER": "u", "PGCHANNELBINDING": "require"}).channel_binding == "require"
    with pytest.raises(ConfigError, match="channel_binding: expected one of disable, prefer, require, got 'always'"):
        PgConfig.from_url("postgres://u@h/d?channel_binding=always", environ={})


@pytest.mark.usefixtures("binds_to_server_certificate")
@pytest.mark.parametrize("sslmode", ["require", "verify-full"])
def test_require_binds_over_tls(pg_cluster: Any, sslmode: str) -> None:
    url = pg_cluster.dsn("scram_user", sslmode=sslmode) + "&channel_binding=require"
    with connect(url) as conn:
        assert conn.query_scalar("SELECT current_user") == "scram_user"
        # The server checked the tls-server-end-point hash inside the proof: success proves it right.
        assert conn.auth_method == "SCRAM-SHA-256-PLUS"


def test_disable_uses_plain_scram_over_tls(pg_cluster: Any) -> None:
    with connect(cluster_config(pg_cluster, "scram_user", sslmode="require", channel_binding="disable")) as conn:
        assert conn.query_scalar("SELECT current_user") == "scram_user"
        assert conn.auth_method == "SCRAM-SHA-256"


def test_require_refuses_plain_tcp(pg_cluster: Any) -> None:
    url = pg_cluster.dsn("scram_user", sslmode="disable") + "&channel_binding=require"
    with pytest.raises(AuthenticationFailed, match="does not use TLS") as info:
        connect(url)
    assert info.value.classify() is ErrorClass.PERMANENT


@pytest.mark.parametrize(
    ("user", "reason"),
    [("trust_user", "authenticated user 'trust_user' without channel binding"), ("md5_user", "MD5Password")],
)
def test_require_refuses_methods_that_cannot_bind(pg_cluster: Any, user: str, reason: str) -> None:
    config = cluster_config(pg_cluster, user, sslmode="require", channel_binding="require")
    with pytest.raises(AuthenticationFailed, match=reason):
        connect(config)


def test_disable_and_prefer_over_plain_tcp(pg_cluster: Any) -> None:
    for mode in ("disable", "prefer"):
        with connect(cluster_config(pg_cluster, "scram_user", sslmode="disable", channel_binding=mode)) as conn:
            assert conn.auth_method == "SCRAM-SHA-256"


@pytest.fixture
def front_of_the_cluster(pg_cluster: Any) -> Iterator[TlsFront]:
    """A TLS front before the cluster's Unix socket: TLS for the client, none for the server."""
    socket = pg_cluster.socket_dir / f".s.PGSQL.{pg_cluster.port}"
    with TlsFront(socket, pg_cluster.tls_dir / "server.crt", pg_cluster.tls_dir / "server.key") as front:
        yield front


def test_require_refuses_a_server_that_offers_no_plus(pg_cluster: Any, front_of_the_cluster: TlsFront) -> None:
    # Behind the front the server sees no TLS, so it offers SCRAM-SHA-256 alone: a real server
    # doing what a downgrading middlebox would make it do.
    config = cluster_config(
        pg_cluster, "scram_user", sslmode="verify-full", sslrootcert=str(pg_cluster.ca_file), channel_binding="require"
    ).replace(port=front_of_the_cluster.port)
    with pytest.raises(AuthenticationFailed, match=r"offers \['SCRAM-SHA-256'\], not SCRAM-SHA-256-PLUS"):
        connect(config)
    with connect(config.replace(channel_binding="prefer")) as conn:
        assert conn.ssl_in_use and conn.auth_method == "SCRAM-SHA-256"
