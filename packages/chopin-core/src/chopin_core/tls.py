"""TLS configuration: the server context a TLS server serves with (certificate chain, ALPN, mTLS).

:func:`server_context` builds the :class:`ssl.SSLContext` that ``Chopin.serve_tls``
serves with (or that an app builds itself); the worker's loop then drives each
connection's handshake and encrypted I/O (:mod:`chopin_core._engine.tls`).
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

from .errors import ConfigError

__all__ = ["ClientAuth", "h2_available", "server_context"]

PemSource = str | os.PathLike[str] | bytes

ClientAuth = Literal["none", "optional", "required"]
"""Whether a TLS server asks clients for a certificate (mTLS), and whether it insists."""

_VERIFY_MODES: Final = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def h2_available() -> bool:
    """Whether HTTP/2 can be served: the ``hpack`` package (the ``http2`` extra) can be imported."""
    try:
        import hpack  # noqa: F401
    except ImportError:
        return False
    return True


def _load_chain(ctx: ssl.SSLContext, cert: PemSource, key: PemSource, password: str | None) -> None:
    """Load a certificate chain and its key from paths or PEM bytes."""
    if isinstance(cert, bytes) or isinstance(key, bytes):
        # load_cert_chain only reads files: write PEM bytes to a private
        # directory (0700, files 0600) just long enough to load them.
        with tempfile.TemporaryDirectory(prefix="chopin-tls-") as tmp:
            cert_path = _as_path(cert, Path(tmp) / "cert.pem")
            key_path = _as_path(key, Path(tmp) / "key.pem")
            _load_chain(ctx, cert_path, key_path, password)
        return
    for what, path in (("certificate", cert), ("key", key)):
        if not os.path.isfile(path):
            raise ConfigError(f"TLS {what} {os.fspath(path)!r}: no such file")
    try:
        ctx.load_cert_chain(cert, key, password)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"TLS certificate {os.fspath(cert)!r} / key {os.fspath(key)!r}: cannot load ({exc.reason or exc})"
        ) from None


def _load_client_ca(ctx: ssl.SSLContext, source: PemSource) -> None:
    """Trust ``source`` (a PEM path or PEM bytes) for client certificates."""
    try:
        if isinstance(source, bytes):
            if b"-----BEGIN " not in source:
                raise ConfigError(f"TLS client_ca: expected PEM bytes (-----BEGIN ...), got {source[:20]!r}")
            ctx.load_verify_locations(cadata=source.decode("ascii"))
        else:
            if not os.path.isfile(source):
                raise ConfigError(f"TLS client_ca {os.fspath(source)!r}: no such file")
            ctx.load_verify_locations(cafile=source)
    except (ssl.SSLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"TLS client_ca: cannot load ({getattr(exc, 'reason', None) or exc})") from None


def _as_path(source: PemSource, target: Path) -> PemSource:
    if not isinstance(source, bytes):
        return source
    if b"-----BEGIN " not in source:
        raise ConfigError(f"TLS {target.stem}: expected PEM bytes (-----BEGIN ...), got {source[:20]!r}")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(source)
    return target


def server_context(
    cert: PemSource,
    key: PemSource,
    *,
    password: str | None = None,
    alpn: Sequence[str] = ("h2", "http/1.1"),
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    client_ca: PemSource | None = None,
    client_auth: ClientAuth | None = None,
) -> ssl.SSLContext:
    """A server :class:`ssl.SSLContext`: TLS 1.2+, the given chain, ALPN, and optionally mTLS.

    Args:
        cert: the certificate chain (leaf first, then intermediates) as a path or PEM bytes.
        key: the private key as a path or PEM bytes.
        password: the key's password, if it is encrypted.
        alpn: protocols offered, most preferred first.
        minimum_version: the oldest TLS version accepted (TLS 1.2 or later).
        client_ca: the CA certificates (a PEM path or PEM bytes) that client
            certificates must chain to; None: no client certificates are asked for.
        client_auth: ``"required"`` (the default with ``client_ca``) refuses a
            handshake without a valid client certificate; ``"optional"`` asks for one
            and accepts a client that sends none (a certificate that is sent must
            still verify); ``"none"`` (the default without ``client_ca``) asks for none.

    Raises:
        ConfigError: a file is missing, the PEM does not load, the key does not
            match the certificate, ``minimum_version`` is older than TLS 1.2,
            ``client_auth`` is unknown, or it asks for certificates without ``client_ca``.
    """
    if client_auth is None:
        client_auth = "none" if client_ca is None else "required"
    if client_auth not in _VERIFY_MODES:
        raise ConfigError(f"TLS client_auth: expected 'none', 'optional' or 'required', got {client_auth!r}")
    if client_auth != "none" and client_ca is None:
        raise ConfigError(f"TLS client_auth={client_auth!r} needs client_ca: the CA client certificates must chain to")
    if minimum_version < ssl.TLSVersion.TLSv1_2:
        raise ConfigError(f"TLS minimum_version: expected TLS 1.2 or later, got {minimum_version.name}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = minimum_version
    # Renegotiation is a denial-of-service lever and nothing here needs it;
    # compression invites CRIME.
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    _load_chain(ctx, cert, key, password)
    if client_ca is not None and client_auth != "none":
        _load_client_ca(ctx, client_ca)
        ctx.verify_mode = _VERIFY_MODES[client_auth]
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx
