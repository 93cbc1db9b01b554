"""Test helpers for TLS and HTTP/2: a CA with an intermediate, and a raw h2-library client.

The certificates are ECDSA P-256 (fast to make).  :func:`write_chain` writes a root
CA, an intermediate CA it signs, and a server certificate the intermediate signs;
``chain.pem`` holds the leaf then the intermediate, as a server must send them, and
a client that trusts only ``root.pem`` has to follow the chain.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Chain:
    """Paths of the files :func:`write_chain` wrote."""

    root: Path
    chain: Path
    key: Path
    leaf_pem: bytes
    intermediate_pem: bytes
    key_pem: bytes


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    issuer: str,
    public: ec.EllipticCurvePublicKey,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    sans: tuple[str, ...] = (),
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        names: list[x509.GeneralName] = []
        for san in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def write_chain(directory: Path, hostnames: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Chain:
    """Write ``root.pem``, ``chain.pem`` (leaf + intermediate) and ``key.pem`` into ``directory``."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert("test root CA", "test root CA", root_key.public_key(), root_key, ca=True)
    inter = _cert("test intermediate CA", "test root CA", inter_key.public_key(), root_key, ca=True)
    leaf = _cert(hostnames[0], "test intermediate CA", leaf_key.public_key(), inter_key, ca=False, sans=hostnames)
    pem = serialization.Encoding.PEM
    leaf_pem, inter_pem = leaf.public_bytes(pem), inter.public_bytes(pem)
    key_pem = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (directory / "root.pem").write_bytes(root.public_bytes(pem))
    (directory / "chain.pem").write_bytes(leaf_pem + inter_pem)
    (directory / "key.pem").write_bytes(key_pem)
    return Chain(directory / "root.pem", directory / "chain.pem", directory / "key.pem", leaf_pem, inter_pem, key_pem)


class ClientCert(NamedTuple):
    """Paths of the files :func:`write_client_cert` wrote (unpacks as ``ca, cert, key``)."""

    ca: Path
    cert: Path
    key: Path


def write_client_cert(directory: Path, name: str = "alice", ca_name: str = "test client CA") -> ClientCert:
    """Write a client CA (``client-ca.pem``) and a client certificate it signs (``<name>.pem``, ``<name>.key``).

    The client certificate's subject CN is ``name``; its extended key usage is TLS client auth.
    """
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    cert = _cert(name, ca_name, key.public_key(), ca_key, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    pem = serialization.Encoding.PEM
    paths = ClientCert(directory / f"{name}-ca.pem", directory / f"{name}.pem", directory / f"{name}.key")
    paths.ca.write_bytes(ca.public_bytes(pem))
    paths.cert.write_bytes(cert.public_bytes(pem))
    paths.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def client_context(cafile: Path, alpn: tuple[str, ...] = ("h2",)) -> ssl.SSLContext:
    """A verifying client context trusting ``cafile``, offering ``alpn``."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


class H2Client:
    """A blocking HTTP/2 client over a real socket, built on the h2 library, for abuse tests.

    Args:
        host, port: where to connect.
        tls: a client context for TLS (ALPN h2), or None for prior knowledge.
        settings: SETTINGS to send in the preface (e.g. a tiny INITIAL_WINDOW_SIZE).
        timeout: seconds one receive may block.
    """

    def __init__(
        self,
        host: str,
        port: int,
        tls: ssl.SSLContext | None = None,
        settings: dict[int, int] | None = None,
        timeout: float = 10.0,
    ) -> None:
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock: socket.socket = tls.wrap_socket(raw, server_hostname="localhost") if tls is not None else raw
        if tls is not None:
            assert isinstance(self.sock, ssl.SSLSocket)
            assert self.sock.selected_alpn_protocol() == "h2"
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.events: list[Any] = []
        self.closed = False
        self.auto_ack = True  # give flow-control credit back as DATA arrives
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(
        self, path: str, method: str = "GET", body: bytes = b"", headers: list[tuple[str, str]] | None = None
    ) -> int:
        """Open a stream with a request; returns its id."""
        stream_id: int = self.conn.get_next_available_stream_id()
        head = [(":method", method), (":path", path), (":scheme", "https"), (":authority", "localhost")]
        self.conn.send_headers(stream_id, head + (headers or []), end_stream=not body)
        for at in range(0, len(body), 16384):  # the default frame size; windows are not checked
            self.conn.send_data(stream_id, body[at : at + 16384], end_stream=at + 16384 >= len(body))
        self.flush()
        return stream_id

    def receive(self, timeout: float | None = None) -> list[Any]:
        """One read's worth of events ([] and ``closed`` set at end of stream)."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
            return []
        events = self.conn.receive_data(data)
        if self.auto_ack:
            for e in events:
                if isinstance(e, h2.events.DataReceived) and e.flow_controlled_length:
                    try:
                        self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                    except h2.exceptions.ProtocolError:
                        pass  # the stream or the connection is already closed
        self.flush()
        self.events.extend(events)
        return list(events)

    def until(self, predicate: Any, timeout: float = 10.0) -> list[Any]:
        """Read until ``predicate(all events so far)`` holds or the connection closes."""
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            if self.closed:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"condition not met within {timeout} s; events: {self.events[-10:]}")
            try:
                self.receive(left)
            except TimeoutError:
                continue
            except ConnectionResetError:
                self.closed = True
        return self.events

    def response(self, stream_id: int, timeout: float = 10.0) -> tuple[dict[bytes, bytes], bytes]:
        """Wait for a whole response on ``stream_id``: its headers and body (flow control acknowledged)."""

        def ended(events: list[Any]) -> bool:
            return any(isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id for e in events)

        self.until(ended, timeout)
        headers: dict[bytes, bytes] = {}
        body = b""
        for e in self.events:
            if isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream_id:
                headers = dict(e.headers)
            elif isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id:
                body += e.data
        return headers, body

    def data_received(self, stream_id: int) -> int:
        data = [e.data for e in self.events if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id]
        return sum(map(len, data))

    def goaway(self) -> h2.events.ConnectionTerminated | None:
        for e in self.events:
            if isinstance(e, h2.events.ConnectionTerminated):
                return e
        return None

    def close(self) -> None:
        self.sock.close()
