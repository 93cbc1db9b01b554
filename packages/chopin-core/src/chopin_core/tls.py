"""TLS for the worker loop: the server context, the non-blocking handshake and TLS socket I/O.

How it works: a TLS server's worker wraps each accepted socket with the app's
:class:`ssl.SSLContext` without handshaking, and parks it in a
:class:`TlsHandshake` that the worker's ``epoll`` loop drives: every readiness
event calls ``do_handshake()`` once more, and ``SSLWantReadError`` /
``SSLWantWriteError`` become the epoll interest to wait for.  A handshake that
fails (plain HTTP on the TLS port, garbage, a client refusing our certificate)
or takes longer than ``tls_handshake_timeout`` closes that connection only.
Once the handshake is done the negotiated ALPN protocol picks the protocol:
``h2`` goes to :mod:`chopin_core.http2`, anything else to the worker's HTTP/1.1
code, which reads and writes through :class:`TlsIO` instead of ``os.read`` /
``os.write`` (same signatures, so the plain-HTTP hot path is unchanged).
Files under TLS are read and encrypted (:func:`copy_file`): ``sendfile`` cannot
encrypt.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from .errors import ConfigError

if TYPE_CHECKING:
    from .files import FileBody

__all__ = [
    "ClientAuth",
    "TlsHandshake",
    "TlsIO",
    "copy_file",
    "h2_available",
    "send_close_notify",
    "server_context",
    "wrap",
]

log = logging.getLogger("chopin_core.tls")

# How much of a file one encrypted copy step reads (a few TLS records).
COPY_CHUNK: Final = 64 * 1024

PemSource = str | os.PathLike[str] | bytes

ClientAuth = Literal["none", "optional", "required"]
"""Whether a TLS server asks clients for a certificate (mTLS), and whether it insists."""

_VERIFY_MODES: Final = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def h2_available() -> bool:
    """Whether the ``h2`` package (the ``http2`` extra) can be imported."""
    try:
        import h2.connection  # noqa: F401
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


class TlsIO:
    """``os.read`` / ``os.write`` / ``os.writev`` look-alikes for TLS sockets, keyed by fd.

    The worker's HTTP/1.1 code calls these with a file descriptor; they find
    the :class:`ssl.SSLSocket` and translate "would block" into
    :class:`BlockingIOError`, which that code already handles.  After a write
    that would block, OpenSSL wants the same bytes again: the worker keeps its
    output buffers until they are written, so the retry starts with them.
    """

    __slots__ = ("socks",)

    def __init__(self) -> None:
        self.socks: dict[int, ssl.SSLSocket] = {}

    def read(self, fd: int, size: int) -> bytes:
        """Up to ``size`` decrypted bytes; ``b""`` at end of stream."""
        sock = self.socks[fd]
        try:
            data = sock.recv(size)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError from None
        # OpenSSL may hold decrypted bytes the kernel no longer signals: take them now.
        while data and len(data) < size and sock.pending():
            more = sock.recv(size - len(data))
            if not more:
                break
            data += more
        return data

    def write(self, fd: int, data: bytes | memoryview) -> int:
        """Encrypt and send ``data``; how much of it was taken."""
        try:
            return self.socks[fd].send(data)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            raise BlockingIOError from None

    def writev(self, fd: int, buffers: Sequence[bytes | memoryview]) -> int:
        """Send ``buffers`` as one write (TLS has no scatter-gather)."""
        return self.write(fd, b"".join(buffers))


def copy_file(write: Callable[[int, bytes], int], fd: int, body: FileBody) -> tuple[int, bool]:
    """Send the next piece of a file region through ``write`` (the encrypted copy path).

    Returns:
        ``(bytes sent, ended early)``; ``ended early`` means the file shrank.

    Raises:
        BlockingIOError: the socket is full (the same piece is read again next time).
    """
    data = body.read(COPY_CHUNK)
    if not data:
        return 0, True
    sent = write(fd, data)
    body.offset += sent
    body.length -= sent
    return sent, False


def send_close_notify(sock: ssl.SSLSocket) -> None:
    """Send TLS close_notify without waiting for the peer's (RFC 8446 6.1)."""
    try:
        sock.unwrap()
    except (OSError, ValueError):
        pass  # the peer's close_notify would need another read; ours is out (or the socket is gone)


class TlsHandshake:
    """One accepted TLS connection whose handshake is not finished yet.

    Args:
        sock: the wrapped, non-blocking socket (``do_handshake_on_connect=False``).
        peer: the client's address.
        deadline: the worker tick at which an unfinished handshake is abandoned.
        done: called with this handshake when it succeeds.
        failed: called with this handshake and the error when it fails.
        set_mask: changes the socket's epoll interest.
    """

    __slots__ = ("deadline", "done", "failed", "fd", "peer", "set_mask", "sock", "want")

    def __init__(
        self,
        sock: ssl.SSLSocket,
        peer: object,
        deadline: int,
        done: Callable[[TlsHandshake], None],
        failed: Callable[[TlsHandshake, BaseException | None], None],
        set_mask: Callable[[int, int], None],
    ) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.deadline = deadline
        self.done = done
        self.failed = failed
        self.set_mask = set_mask
        self.want = 0  # 0 read, 1 write

    def step(self) -> None:
        """Advance the handshake once; called when the socket is ready."""
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._wait(0)
        except ssl.SSLWantWriteError:
            self._wait(1)
        except (ssl.SSLError, OSError, ValueError) as exc:
            log.debug("TLS handshake with %s failed: %s", self.peer, exc)
            self.failed(self, exc)
        else:
            self.done(self)

    def on_event(self, events: int) -> None:
        """An epoll event for this socket."""
        self.step()

    def on_tick(self, tick: int) -> None:
        """Once a second: abandon a handshake past its deadline."""
        if tick >= self.deadline:
            log.debug("TLS handshake with %s timed out", self.peer)
            self.failed(self, TimeoutError("TLS handshake timed out"))

    def stop(self) -> None:
        """Graceful stop: a connection still handshaking has no request in flight."""
        self.failed(self, None)

    def abort(self) -> None:
        """The worker is exiting: close now."""
        self.failed(self, None)

    def _wait(self, want: int) -> None:
        if want != self.want:
            self.want = want
            self.set_mask(self.fd, want)


def wrap(ctx: ssl.SSLContext, sock: socket.socket) -> ssl.SSLSocket:
    """Wrap an accepted, non-blocking socket for a server-side handshake driven by the loop."""
    return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False, suppress_ragged_eofs=True)
