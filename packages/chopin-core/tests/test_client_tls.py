"""``https://`` with both clients (blocking ``HttpClient``, ``AsyncHttpClient`` under ``run_blocking``).

The upstream is a real TLS server on 127.0.0.1 (``http.server`` behind an
``ssl.SSLContext`` holding the chain of ``apps.tls_support``: root -> intermediate
-> leaf for ``localhost`` and ``127.0.0.1``); every test runs each shell in turn.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apps.early_upstream import early_upstream
from apps.http_upstream import Upstream, pattern, running_upstream
from apps.tls_support import Chain, write_chain, write_client_cert
from chopin_core import run_blocking
from chopin_core.client import (
    AsyncHttpClient,
    CertificateVerifyError,
    ClientResponse,
    ClientSettings,
    ConnectError,
    ConnectTimeout,
    HttpClient,
    TlsError,
    UpstreamClosed,
)
from chopin_core.errors import ConfigError

Fetch = Callable[..., ClientResponse]


def server_context(chain: Chain, client_ca: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain.chain, chain.key)
    ctx.set_alpn_protocols(["http/1.1"])
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


@pytest.fixture(scope="module")
def upstream(chain: Chain) -> Iterator[Upstream]:
    with running_upstream(server_context(chain)) as server:
        yield server


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """A TLS server whose certificate names only ``other.example`` (another CA, too)."""
    other = write_chain(tmp_path_factory.mktemp("other"), ("other.example",))
    with running_upstream(server_context(other)) as server:
        server.chain = other  # type: ignore[attr-defined]
        yield server


@pytest.fixture(params=["blocking", "async"])
def fetch(request: pytest.FixtureRequest) -> Fetch:
    """``fetch(settings, url, method="GET", body=None, times=1)``: the last response, by the shell under test."""

    def blocking(settings: ClientSettings, url: str, method: str = "GET", body: bytes | None = None, times: int = 1):
        with HttpClient(settings) as client:
            for _ in range(times):
                resp = client.request(method, url, body=body)
            return resp

    def waiting(settings: ClientSettings, url: str, method: str = "GET", body: bytes | None = None, times: int = 1):
        async def main() -> ClientResponse:
            async with AsyncHttpClient(settings) as client:
                for _ in range(times):
                    resp = await client.request(method, url, body=body)
                return resp

        return run_blocking(main())

    return blocking if request.param == "blocking" else waiting


def test_https_verified_against_a_ca_bundle_path(fetch: Fetch, upstream: Upstream, chain: Chain) -> None:
    settings = ClientSettings(verify=str(chain.root))
    resp = fetch(settings, f"{upstream.url}/echo?q=1")
    assert resp.status == 200
    info = json.loads(resp.body)
    assert info["path"] == "/echo?q=1"
    assert ["Host", f"127.0.0.1:{upstream.server_address[1]}"] in info["headers"]
    posted = json.loads(fetch(settings, f"{upstream.url}/echo", "POST", b"secret body").body)
    assert (posted["method"], posted["body"]) == ("POST", "secret body")
    # By name (SNI and the certificate check for "localhost"), through getaddrinfo.
    named = fetch(settings, f"https://localhost:{upstream.server_address[1]}/big?size=300000")
    assert len(named.body) == 300000


def test_both_shells_reuse_the_tls_connection_and_key_the_pool_by_scheme(upstream: Upstream, chain: Chain) -> None:
    settings = ClientSettings(verify=str(chain.root))
    key = ("https", "127.0.0.1", upstream.server_address[1])
    with HttpClient(settings) as client:
        ports = {json.loads(client.get(f"{upstream.url}/echo").body)["peer_port"] for _ in range(5)}
        assert len(ports) == 1
        assert client._pool.idle_count(key) == 1
        assert isinstance(client._pool._idle[key][0][0], ssl.SSLSocket)

    async def main() -> tuple[set[int], int, int]:
        async with AsyncHttpClient(settings) as api:
            seen = {json.loads((await api.get(f"{upstream.url}/echo")).body)["peer_port"] for _ in range(5)}
            return seen, api.connections_opened, api._pool.idle_count(key)

    ports, opened, idle = run_blocking(main())
    assert (len(ports), opened, idle) == (1, 1, 1)


def test_an_unknown_ca_fails_verification_with_a_clear_error(fetch: Fetch, upstream: Upstream) -> None:
    # The default: the system's CAs, which do not know the test root.
    with pytest.raises(CertificateVerifyError) as info:
        fetch(ClientSettings(), f"{upstream.url}/echo")
    port = upstream.server_address[1]
    expected = f"certificate verify failed: unable to get local issuer certificate for host 127.0.0.1:{port}"
    assert str(info.value) == expected
    assert isinstance(info.value, TlsError) and isinstance(info.value, ConnectError)
    assert info.value.status == 502


def test_a_wrong_host_name_fails_verification(fetch: Fetch, stranger: Upstream) -> None:
    settings = ClientSettings(verify=str(stranger.chain.root))  # type: ignore[attr-defined]
    port = stranger.server_address[1]
    with pytest.raises(CertificateVerifyError, match=r"certificate verify failed: IP address mismatch.*127\.0\.0\.1"):
        fetch(settings, f"https://127.0.0.1:{port}/echo")
    with pytest.raises(CertificateVerifyError, match=rf"Hostname mismatch.*'localhost'.* for host localhost:{port}$"):
        fetch(settings, f"https://localhost:{port}/echo")


def test_verify_false_accepts_any_certificate(fetch: Fetch, stranger: Upstream) -> None:
    resp = fetch(ClientSettings(verify=False), f"https://localhost:{stranger.server_address[1]}/echo")
    assert resp.status == 200


def test_mutual_tls_with_a_client_certificate(fetch: Fetch, chain: Chain, tmp_path: Path) -> None:
    client_ca, cert, key = write_client_cert(tmp_path)
    with running_upstream(server_context(chain, client_ca)) as server:
        resp = fetch(ClientSettings(verify=str(chain.root), client_cert=str(cert), client_key=str(key)), server.url)
        assert resp.status == 200
        # Without one the server ends the connection; under TLS 1.3 the client learns it only
        # after its own handshake finished, on its first write or read (with the alert's reason).
        with pytest.raises((TlsError, UpstreamClosed)):
            fetch(ClientSettings(verify=str(chain.root), read_timeout=5.0), server.url)


def test_a_silent_server_is_a_handshake_timeout(fetch: Fetch) -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts TCP (the kernel does), never speaks TLS
    try:
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ConnectTimeout, match=rf"TLS handshake with 127\.0\.0\.1:{port} took longer than 0\.3 s"):
            fetch(ClientSettings(connect_timeout=0.3, verify=False), f"https://127.0.0.1:{port}/")
        assert 0.25 <= time.monotonic() - started < 2.0
    finally:
        listener.close()


def test_plain_http_spoken_to_is_a_tls_error(fetch: Fetch) -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_in_plain_http() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer_in_plain_http, daemon=True)
    thread.start()
    try:
        with pytest.raises(TlsError, match=r"TLS handshake with 127\.0\.0\.1:\d+ failed"):
            fetch(ClientSettings(verify=False), f"https://127.0.0.1:{listener.getsockname()[1]}/")
    finally:
        thread.join(5)
        listener.close()


@pytest.mark.parametrize("ending", ["close", "reset"])
def test_an_early_refusal_of_a_large_body_over_tls(fetch: Fetch, chain: Chain, ending: str) -> None:
    # As in test_client: the 413 comes once the head is read, then the upstream closes with the
    # body unread.  Over TLS the request goes out a record at a time while the answer is read.
    settings = ClientSettings(verify=str(chain.root), read_timeout=3.0)
    with early_upstream(server_context(chain)) as server:
        resp = fetch(settings, f"{server.url}/refuse-{ending}", "POST", bytes(8 * 1024 * 1024))
        assert (resp.status, resp.body) == (413, b"too large")


def test_an_upstream_that_echoes_while_it_reads_over_tls(fetch: Fetch, chain: Chain) -> None:
    body = pattern(8 * 1024 * 1024)
    settings = ClientSettings(verify=str(chain.root), read_timeout=3.0)
    with early_upstream(server_context(chain)) as server:
        resp = fetch(settings, f"{server.url}/echo", "PUT", body, times=2)
        assert (resp.status, resp.body == body) == (200, True)
        assert server.accepts == 1


def test_bad_tls_settings_are_refused_clearly(fetch: Fetch, upstream: Upstream, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load the CA bundle"):
        fetch(ClientSettings(verify=str(tmp_path / "missing.pem")), upstream.url)
    with pytest.raises(ConfigError, match="client_cert: cannot load"):
        fetch(ClientSettings(verify=False, client_cert=str(tmp_path / "missing.pem")), upstream.url)
    with pytest.raises(ConfigError, match="expected True, False or a CA bundle path"):
        ClientSettings(verify="")
    with pytest.raises(ConfigError, match="client_key: given without client_cert"):
        ClientSettings(client_key="key.pem")
