"""write_tls_files: a CA and a server certificate that TLS clients accept for localhost and 127.0.0.1."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from chopin_testkit.tls import TlsFiles, write_tls_files
from cryptography import x509


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return write_tls_files(tmp_path_factory.mktemp("tls"))


def test_files_are_pem_and_key_is_private(tls: TlsFiles) -> None:
    for path in (tls.ca_file, tls.cert_file):
        assert path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert tls.key_file.read_bytes().startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert stat.S_IMODE(tls.key_file.stat().st_mode) == 0o600


def test_server_certificate_names_and_issuer(tls: TlsFiles) -> None:
    ca = x509.load_pem_x509_certificate(tls.ca_file.read_bytes())
    cert = x509.load_pem_x509_certificate(tls.cert_file.read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    common_name = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert common_name == "localhost"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def _handshake(tls: TlsFiles, server_hostname: str, ca_file: Path) -> None:
    """A real TLS handshake over 127.0.0.1: our server certificate, Python's verifying client."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tls.cert_file, tls.key_file)
    client_ctx = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)
        port = listener.getsockname()[1]
        server_errors: list[BaseException] = []

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.sendall(b"ok")
            except (OSError, ssl.SSLError) as exc:
                server_errors.append(exc)

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with client_ctx.wrap_socket(raw, server_hostname=server_hostname) as conn:
                    assert conn.recv(2) == b"ok"
        finally:
            thread.join(timeout=5)


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_python_ssl_verifies_the_server(tls: TlsFiles, hostname: str) -> None:
    _handshake(tls, hostname, tls.ca_file)


def test_python_ssl_rejects_another_ca(tls: TlsFiles, tmp_path: Path) -> None:
    other = write_tls_files(tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tls, "localhost", other.ca_file)


def test_python_ssl_rejects_a_name_not_in_the_certificate(tls: TlsFiles) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tls, "example.com", tls.ca_file)
