"""The errors of the HTTP client and the reverse proxy (part of the :class:`~chopin_core.errors.ChopinError` tree).

Each error that a proxy turns into a response carries the status it maps to:
502 when the upstream could not be reached or answered garbage, 504 when it
took too long.
"""

from __future__ import annotations

from .errors import ChopinError

__all__ = [
    "CertificateVerifyError",
    "ClientError",
    "ConnectError",
    "ConnectTimeout",
    "InvalidURL",
    "ReadTimeout",
    "ResponseProtocolError",
    "ResponseTooLarge",
    "TlsError",
    "UpstreamClosed",
]


class ClientError(ChopinError):
    """Root of every error raised by :class:`~chopin_core.client.HttpClient`, ``AsyncHttpClient`` and the proxy.

    Attributes:
        status: the status a proxy answers with when this error ends an exchange.
    """

    status: int = 502


class InvalidURL(ClientError, ValueError):
    """A URL the client cannot use: not ``http://`` or ``https://``, no host, a bad port."""


class ConnectError(ClientError, OSError):
    """The upstream could not be connected to (refused, unreachable, unresolvable) (502)."""

    status = 502


class TlsError(ConnectError):
    """The TLS handshake with an ``https://`` upstream failed (protocol, cipher, a refused client certificate) (502)."""

    status = 502


class CertificateVerifyError(TlsError):
    """The upstream's certificate did not verify: an unknown CA, a wrong host name, expired (502).

    The message names the reason and the host: ``certificate verify failed: Hostname
    mismatch, certificate is not valid for 'x'. for host x:443``.
    """

    status = 502


class ConnectTimeout(ClientError, TimeoutError):
    """Connecting took longer than ``connect_timeout`` (504)."""

    status = 504


class ReadTimeout(ClientError, TimeoutError):
    """The upstream sent nothing for ``read_timeout`` seconds (504)."""

    status = 504


class ResponseProtocolError(ClientError):
    """The upstream's response broke HTTP/1.1 framing or a limit (502)."""

    status = 502


class ResponseTooLarge(ResponseProtocolError):
    """A response head or a buffered body is larger than its limit (502)."""

    status = 502


class UpstreamClosed(ClientError, ConnectionError):
    """The upstream closed the connection before the response was complete (502)."""

    status = 502
