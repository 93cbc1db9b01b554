"""TLS: the server context, and real clients (httpx, curl, ssl, websockets) against serve_tls."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import ssl
import subprocess
import time
import warnings
from pathlib import Path

import httpx
import pytest
from apps.tls_app import pattern
from apps.tls_support import Chain, ClientCert, write_chain, write_client_cert
from chopin_core import ConfigError
from chopin_core.tls import server_context

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files") / "big.bin"
    path.write_bytes(pattern(3_000_000))
    return path


def tls_env(chain: Chain, big_file: Path, **extra: str) -> dict[str, str]:
    return {"TLS_CERT": str(chain.chain), "TLS_KEY": str(chain.key), "TLS_APP_FILE": str(big_file), **extra}


@pytest.fixture(scope="module")
def server(serve_module, chain, big_file):
    return serve_module("apps.tls_app:app", env=tls_env(chain, big_file), tls_handshake_timeout=1.0)


def url(server, path: str = "/") -> str:
    return f"https://localhost:{server.port}{path}"


def good_client(chain: Chain) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=str(chain.root)), timeout=10.0)


# -- the context ---------------------------------------------------------------------


def test_context_loads_a_chain_from_paths_and_from_pem_bytes(chain: Chain) -> None:
    for cert, key in ((chain.chain, chain.key), (chain.leaf_pem + chain.intermediate_pem, chain.key_pem)):
        ctx = server_context(cert, key)
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
        assert ctx.options & ssl.OP_NO_RENEGOTIATION


def test_context_refuses_bad_input_clearly(chain: Chain, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        server_context(tmp_path / "missing.pem", chain.key)
    with pytest.raises(ConfigError, match="expected PEM bytes"):
        server_context(b"not a certificate", chain.key_pem)
    other = write_chain(tmp_path)  # a key that does not match the first chain's certificate
    with pytest.raises(ConfigError, match="cannot load"):
        server_context(chain.chain, other.key)
    with pytest.raises(ConfigError, match=r"TLS 1\.2 or later"):
        server_context(chain.chain, chain.key, minimum_version=ssl.TLSVersion.TLSv1_1)


# -- real clients ------------------------------------------------------------------------


def test_httpx_verifies_the_chain_and_gets_http11(server, chain: Chain) -> None:
    with good_client(chain) as client:
        resp = client.get(url(server))
        assert (resp.status_code, resp.text, resp.http_version) == (200, "hello", "HTTP/1.1")
        echoed = client.post(url(server, "/echo?x=1"), content=b"payload", headers={"X-Custom": "yes"})
        assert echoed.content == b"payload"
        assert echoed.headers["x-query"] == "x=1"
        assert echoed.headers["x-custom"] == "yes"


def test_a_client_without_the_root_refuses_the_server(server) -> None:
    with httpx.Client(timeout=10.0) as client, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        client.get(url(server))


def test_curl_verifies_the_chain_over_http11_and_h2(server, chain: Chain) -> None:
    for flag, version in (("--http1.1", "1.1"), ("--http2", "2")):
        args = ["--cacert", str(chain.root), "-w", "|%{http_version}", url(server)]
        done = subprocess.run(
            ["curl", "-sS", "--max-time", "20", flag, *args],
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == b"hello|" + version.encode()


def test_tls12_is_accepted_and_tls11_refused(server, chain: Chain) -> None:
    ctx = ssl.create_default_context(cafile=str(chain.root))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with httpx.Client(verify=ctx, timeout=10.0) as client:
        assert client.get(url(server)).text == "hello"
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # offering TLS 1.1 is the point here
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        with socket.create_connection((HOST, server.port), timeout=10.0) as raw, pytest.raises(ssl.SSLError):
            old.wrap_socket(raw, server_hostname="localhost")


def test_large_body_stream_and_file_under_tls(server, chain: Chain, big_file: Path) -> None:
    with good_client(chain) as client:
        big = client.get(url(server, "/big?size=2500000"))
        assert big.content == pattern(2_500_000)
        streamed = client.get(url(server, "/stream?n=2000"))
        assert streamed.content == b"".join(b"chunk %06d|" % i for i in range(2000))
        # A file over TLS takes the copy path (sendfile cannot encrypt).
        got = client.get(url(server, "/file"))
        assert got.status_code == 200
        assert hashlib.sha256(got.content).digest() == hashlib.sha256(big_file.read_bytes()).digest()
        ranged = client.get(url(server, "/file"), headers={"Range": "bytes=100-199"})
        assert (ranged.status_code, ranged.content) == (206, big_file.read_bytes()[100:200])


def test_close_notify_ends_the_connection(server, chain: Chain) -> None:
    ctx = ssl.create_default_context(cafile=str(chain.root))
    raw = socket.create_connection((HOST, server.port), timeout=10.0)
    with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        received = b""
        # Without close_notify the end would raise SSLEOFError ("EOF in violation of protocol").
        while chunk := tls.recv(65536):
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert received.endswith(b"hello")


def _plain_http(port: int) -> bytes:
    with socket.create_connection((HOST, port), timeout=10.0) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            return sock.recv(4096)
        except ConnectionResetError:
            return b""


def _garbage(port: int) -> bytes:
    with socket.create_connection((HOST, port), timeout=10.0) as sock:
        sock.sendall(os.urandom(2048))
        try:
            return sock.recv(4096)
        except ConnectionResetError:
            return b""


def _wrong_name(port: int, chain: Chain) -> None:
    ctx = ssl.create_default_context(cafile=str(chain.root))
    with socket.create_connection((HOST, port), timeout=10.0) as raw:
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            ctx.wrap_socket(raw, server_hostname="wrong.example")


def test_bad_handshakes_close_only_their_connection(server, chain: Chain) -> None:
    with good_client(chain) as client:
        assert client.get(url(server)).text == "hello"  # a keep-alive connection, open throughout
        for _ in range(3):
            reply = _plain_http(server.port)
            assert not reply.startswith(b"HTTP/1.1 200")  # no plaintext answer on the TLS port
            _garbage(server.port)
            _wrong_name(server.port, chain)
            assert client.get(url(server)).text == "hello"
        assert server.process.poll() is None


def test_handshake_timeout_closes_a_silent_client(server, chain: Chain) -> None:
    with good_client(chain) as client:
        with socket.create_connection((HOST, server.port), timeout=15.0) as silent:
            started = time.monotonic()
            assert client.get(url(server)).text == "hello"  # served while the silent one waits
            assert silent.recv(1) == b""  # tls_handshake_timeout=1 s: closed by the server
            assert time.monotonic() - started < 12.0
        assert client.get(url(server)).text == "hello"


def test_websocket_over_tls(server, chain: Chain) -> None:
    from websockets.asyncio.client import connect

    async def talk() -> list[str | bytes]:
        ctx = ssl.create_default_context(cafile=str(chain.root))
        async with connect(f"wss://localhost:{server.port}/ws", ssl=ctx, open_timeout=10) as ws:
            got = []
            for message in ("one", "two", "x" * 70_000):
                await ws.send(message)
                got.append(await asyncio.wait_for(ws.recv(), 10))
            return got

    assert asyncio.run(talk()) == ["one", "two", "x" * 70_000]


def test_tls_with_several_workers_and_http2_off(serve, chain: Chain, big_file: Path) -> None:
    server = serve("apps.tls_app:app", workers=2, env=tls_env(chain, big_file, CHOPIN_HTTP2="0"))
    with httpx.Client(verify=ssl.create_default_context(cafile=str(chain.root)), http2=True, timeout=10.0) as client:
        for _ in range(4):
            resp = client.get(url(server))
            # http2=False: ALPN offers only http/1.1, so even an h2-capable client speaks 1.1.
            assert (resp.text, resp.http_version) == ("hello", "HTTP/1.1")


def test_without_the_h2_package_tls_and_cleartext_speak_http11(serve, chain: Chain, big_file: Path) -> None:
    tls = serve("apps.tls_app:app", env=tls_env(chain, big_file, TLS_APP_NO_H2="1"))
    plain = serve("apps.tls_app:app", env={"TLS_APP_FILE": str(big_file), "TLS_APP_NO_H2": "1"})
    verify = ssl.create_default_context(cafile=str(chain.root))
    with httpx.Client(verify=verify, http2=True, timeout=10.0) as client:
        resp = client.get(url(tls))
        assert (resp.text, resp.http_version) == ("hello", "HTTP/1.1")  # ALPN offered http/1.1 only
    with socket.create_connection((HOST, plain.port), timeout=10.0) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 505 ")


def test_shutdown_with_a_handshake_pending(serve, chain: Chain, big_file: Path) -> None:
    server = serve("apps.tls_app:app", env=tls_env(chain, big_file))
    with socket.create_connection((HOST, server.port), timeout=10.0) as silent:
        silent.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, then nothing
        time.sleep(0.2)
        assert server.stop() is None  # SIGTERM: exits 0 although a handshake is in flight
        assert silent.recv(1) == b""


# -- client certificates (mTLS) ----------------------------------------------------------


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> tuple[ClientCert, ClientCert]:
    """alice, signed by the CA the server trusts; mallory, signed by another CA."""
    directory = tmp_path_factory.mktemp("clients")
    return write_client_cert(directory, "alice"), write_client_cert(directory, "mallory", "another CA")


def mtls_server(serve, chain: Chain, alice: ClientCert, auth: str):
    env = {"TLS_CERT": str(chain.chain), "TLS_KEY": str(chain.key), "TLS_CLIENT_CA": str(alice.ca)}
    return serve("apps.clients_app:app", workers=1, env={**env, "TLS_CLIENT_AUTH": auth}, tls_handshake_timeout=2.0)


def curl_cert(server, chain: Chain, *options: str, path: str = "/cert") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "20", "--cacert", str(chain.root), *options, url(server, path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def subject_cn(cert: dict[str, object]) -> str:
    return dict(pair[0] for pair in cert["subject"])["commonName"]  # type: ignore[attr-defined]


def test_mtls_required_verifies_curl_client_certificates(serve, chain: Chain, clients) -> None:
    alice, mallory = clients
    server = mtls_server(serve, chain, alice, "required")
    for flag in ("--http1.1", "--http2"):
        got = curl_cert(server, chain, flag, "--cert", str(alice.cert), "--key", str(alice.key))
        assert got.returncode == 0, got.stderr
        cert = json.loads(got.stdout)
        assert (
            subject_cn(cert) == "alice" and dict(pair[0] for pair in cert["issuer"])["commonName"] == "test client CA"
        )
    # No certificate, or one from a CA the server does not trust: refused in the handshake.
    for options in ((), ("--cert", str(mallory.cert), "--key", str(mallory.key))):
        refused = curl_cert(server, chain, *options)
        assert refused.returncode != 0 and refused.stdout == "", refused
    # The server goes on serving.
    got = curl_cert(server, chain, "--cert", str(alice.cert), "--key", str(alice.key), path="/client")
    assert json.loads(got.stdout)["host"] == "127.0.0.1"


def test_mtls_optional_lets_clients_without_a_certificate_in(serve, chain: Chain, clients) -> None:
    alice, mallory = clients
    server = mtls_server(serve, chain, alice, "optional")
    anonymous = curl_cert(server, chain)
    assert anonymous.returncode == 0 and json.loads(anonymous.stdout) is None, anonymous
    got = curl_cert(server, chain, "--cert", str(alice.cert), "--key", str(alice.key))
    assert subject_cn(json.loads(got.stdout)) == "alice"
    # A certificate that is sent must still verify.
    refused = curl_cert(server, chain, "--cert", str(mallory.cert), "--key", str(mallory.key))
    assert refused.returncode != 0 and refused.stdout == "", refused
    # httpx over HTTP/2 with a client certificate: ctx.peer_cert on a stream.
    ctx = ssl.create_default_context(cafile=str(chain.root))
    ctx.load_cert_chain(alice.cert, alice.key)
    with httpx.Client(verify=ctx, http2=True, timeout=10.0) as client:
        answer = client.get(url(server, "/cert"))
        assert answer.http_version == "HTTP/2" and subject_cn(answer.json()) == "alice"


def test_tls_without_client_ca_asks_for_no_certificate(serve, chain: Chain, clients) -> None:
    alice, _ = clients
    server = serve("apps.clients_app:app", workers=1, env={"TLS_CERT": str(chain.chain), "TLS_KEY": str(chain.key)})
    assert json.loads(curl_cert(server, chain).stdout) is None
    # A certificate the client offers anyway is never asked for, so never seen.
    assert json.loads(curl_cert(server, chain, "--cert", str(alice.cert), "--key", str(alice.key)).stdout) is None
    assert server_context(chain.chain, chain.key).verify_mode == ssl.CERT_NONE


def test_client_auth_configuration_errors(chain: Chain, clients, tmp_path: Path) -> None:
    alice, _ = clients
    ctx = server_context(chain.chain, chain.key, client_ca=alice.ca)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    ctx = server_context(chain.chain, chain.key, client_ca=alice.ca.read_bytes(), client_auth="optional")
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    with pytest.raises(ConfigError, match="client_auth='required' needs client_ca"):
        server_context(chain.chain, chain.key, client_auth="required")
    with pytest.raises(ConfigError, match="expected 'none', 'optional' or 'required', got 'yes'"):
        server_context(chain.chain, chain.key, client_ca=alice.ca, client_auth="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no such file"):
        server_context(chain.chain, chain.key, client_ca=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="expected PEM bytes"):
        server_context(chain.chain, chain.key, client_ca=b"not pem")
