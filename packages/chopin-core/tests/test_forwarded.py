"""The client's address: the forwarding-header walk without sockets, then ctx.client over real clients."""

from __future__ import annotations

import socket
import subprocess

import httpx
import pytest
from chopin_core import ConfigError, Response, Router, Settings, TestClient
from chopin_core.forwarded import TrustedProxies, client_of, peer_pair
from chopin_core.request import Request

# -- the walk, sans-IO ---------------------------------------------------------------


def request(*headers: tuple[str, str]) -> Request:
    lines = [f"{name}: {value}".encode("latin-1") for name, value in (("Host", "x"), *headers)]
    return Request("GET", "/", "/", None, True, True, lines)


class Conn:
    def __init__(self, peer: object, proxies: TrustedProxies | None) -> None:
        self.peer = peer
        self.proxies = proxies
        self.sock = None


LB = TrustedProxies(["10.0.0.0/8", "::1"])
LB_FORWARDED = TrustedProxies(["10.0.0.0/8", "::1"], "Forwarded")


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        # No proxy trusted, or the peer is not one: the header is ignored.
        (("203.0.113.9", 5000), [("X-Forwarded-For", "1.2.3.4")], ("203.0.113.9", 5000)),
        # A trusted peer: the rightmost hop that is not trusted wins; what the client wrote to its left does not.
        (("10.0.0.2", 5000), [("X-Forwarded-For", "6.6.6.6, 198.51.100.7")], ("198.51.100.7", 0)),
        (("10.0.0.2", 5000), [("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.1.1.1")], ("198.51.100.7", 0)),
        # Repeated fields concatenate in order (RFC 9110 5.3).
        (
            ("10.0.0.2", 5000),
            [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.7")],
            ("198.51.100.7", 0),
        ),
        # Every hop trusted: the leftmost.
        (("10.0.0.2", 5000), [("X-Forwarded-For", "10.9.9.9, 10.1.1.1")], ("10.9.9.9", 0)),
        # A malformed hop: the trusted proxy that reported it is the client.
        (("10.0.0.2", 5000), [("X-Forwarded-For", "1.2.3.4, garbage")], ("10.0.0.2", 5000)),
        (("10.0.0.2", 5000), [("X-Forwarded-For", "1.2.3.4, garbage, 10.1.1.1")], ("10.1.1.1", 0)),
        # Ports and IPv6, canonical text; IPv4-mapped addresses become IPv4.
        (("10.0.0.2", 5000), [("X-Forwarded-For", "198.51.100.7:4711")], ("198.51.100.7", 4711)),
        (("10.0.0.2", 5000), [("X-Forwarded-For", "[2001:DB8::17]:4711")], ("2001:db8::17", 4711)),
        (("::1", 5000, 0, 0), [("X-Forwarded-For", "2001:db8::17")], ("2001:db8::17", 0)),
        (("::ffff:10.0.0.2", 5000, 0, 0), [("X-Forwarded-For", "::ffff:198.51.100.7")], ("198.51.100.7", 0)),
        # No header from a trusted peer: the peer.
        (("10.0.0.2", 5000), [], ("10.0.0.2", 5000)),
        # Only the configured header is read: Forwarded is what the client sent here.
        (("10.0.0.2", 5000), [("Forwarded", "for=1.2.3.4")], ("10.0.0.2", 5000)),
    ],
)
def test_x_forwarded_for_walk(peer, headers, client) -> None:
    assert client_of(Conn(peer, LB), request(*headers)) == client


@pytest.mark.parametrize(
    ("value", "client"),
    [
        # RFC 7239 section 4's examples.
        ('for="_gazonk"', ("10.0.0.2", 5000)),
        ('For="[2001:db8:cafe::17]:4711"', ("2001:db8:cafe::17", 4711)),
        ("for=192.0.2.60;proto=http;by=203.0.113.43", ("192.0.2.60", 0)),
        ("for=192.0.2.43, for=198.51.100.17", ("198.51.100.17", 0)),
        # Quoted strings may hold the separators; an element without for= is a hop that did not say.
        ('for=192.0.2.43;by="a,b;c", for=10.3.3.3', ("192.0.2.43", 0)),
        ("for=192.0.2.43, proto=https", ("10.0.0.2", 5000)),
        ("for=unknown", ("10.0.0.2", 5000)),
    ],
)
def test_forwarded_walk(value, client) -> None:
    assert client_of(Conn(("10.0.0.2", 5000), LB_FORWARDED), request(("Forwarded", value))) == client


def test_peer_pair_and_unknown_origins() -> None:
    assert peer_pair(("::1", 80, 0, 0)) == ("::1", 80)
    assert peer_pair("/run/app.sock") == ("", 0)
    assert client_of(None, request()) == ("", 0)
    assert client_of(Conn(("1.2.3.4", 9), None), request(("X-Forwarded-For", "5.6.7.8"))) == ("1.2.3.4", 9)


def test_settings_validate_and_read_the_environment() -> None:
    assert Settings().trusted_proxies == ()
    assert Settings(trusted_proxies=["10.0.0.0/8"]).trusted_proxies == ("10.0.0.0/8",)  # type: ignore[arg-type]
    env = {"CHOPIN_TRUSTED_PROXIES": "10.0.0.0/8, ::1", "CHOPIN_FORWARDED_HEADER": "Forwarded"}
    got = Settings.from_env(env)
    assert (got.trusted_proxies, got.forwarded_header) == (("10.0.0.0/8", "::1"), "forwarded")
    with pytest.raises(ConfigError, match=r"expected an address or CIDR network, got '10\.0\.0\.0/33'"):
        Settings(trusted_proxies=("10.0.0.0/33",))
    with pytest.raises(ConfigError, match="expected a sequence of networks"):
        Settings(trusted_proxies="10.0.0.1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="forwarded_header: expected one of x-forwarded-for, forwarded"):
        Settings(forwarded_header="x-real-ip")


def test_testclient_requests_come_from_testclient() -> None:
    router = Router()
    router.get("/", lambda ctx: Response.json(list(ctx.client)))
    assert TestClient(router).get("/").json() == ["testclient", 50000]
    trusting = TestClient(router, Settings(trusted_proxies=("0.0.0.0/0",)))
    # "testclient" is no address, so never a trusted proxy: the header is ignored.
    assert trusting.get("/", headers={"X-Forwarded-For": "1.2.3.4"}).json() == ["testclient", 50000]


# -- real clients --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("apps.clients_app:app", workers=2)


@pytest.fixture(scope="module")
def behind_proxy(serve_module):
    # 127.0.0.1 is the load balancer here; X-Forwarded-For is believed from it.
    return serve_module("apps.clients_app:app", workers=1, env={"CHOPIN_TRUSTED_PROXIES": "127.0.0.0/8"})


def test_ctx_client_is_the_socket_peer_over_http11(server) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        local = sock.getsockname()
        for path in ("/client", "/async-client"):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n".encode())
            head, _, body = _read_response(sock)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert httpx.Response(200, content=body).json() == {"host": local[0], "port": local[1]}


def test_wsgi_environ_has_remote_addr_and_port(server) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        local = sock.getsockname()
        sock.sendall(b"GET /wsgi/x HTTP/1.1\r\nHost: x\r\n\r\n")
        _, _, body = _read_response(sock)
    assert body.decode() == f"{local[0]}:{local[1]}"


def test_ctx_client_over_http2(server) -> None:
    with httpx.Client(http1=False, http2=True, base_url=server.url, timeout=20.0) as client:
        got = client.get("/client", headers={"X-Forwarded-For": "1.2.3.4"})
        assert got.http_version == "HTTP/2"
        assert got.json()["host"] == "127.0.0.1" and got.json()["port"] > 0
        waited = client.get("/async-client")
        assert waited.json() == got.json()  # same connection, same peer


def test_trusted_proxy_header_is_believed(behind_proxy) -> None:
    with httpx.Client(base_url=behind_proxy.url, timeout=10.0) as client:
        got = client.get("/client", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.7"})
        assert got.json() == {"host": "198.51.100.7", "port": 0}
        assert client.get("/wsgi/", headers={"X-Forwarded-For": "198.51.100.8"}).text == "198.51.100.8:0"
        # Without the header, the proxy itself.
        assert client.get("/client").json()["host"] == "127.0.0.1"
    with httpx.Client(http1=False, http2=True, base_url=behind_proxy.url, timeout=20.0) as client:
        got = client.get("/async-client", headers={"X-Forwarded-For": "198.51.100.9"})
        assert got.http_version == "HTTP/2" and got.json() == {"host": "198.51.100.9", "port": 0}


def test_curl_sees_its_own_port(server) -> None:
    out = subprocess.run(
        ["curl", "-sS", "--local-port", "47000-47999", f"{server.url}/client"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    got = httpx.Response(200, content=out.stdout.encode()).json()
    assert got["host"] == "127.0.0.1" and 47000 <= got["port"] <= 47999


def _read_response(sock: socket.socket) -> tuple[bytes, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.decode().lower()] = value.decode().strip()
    length = int(fields.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return head, fields, rest[:length]
