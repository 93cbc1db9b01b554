"""The client's address: the socket's peer, or, behind trusted proxies, the hop they report.

How it works: a request's client is the peer of its connection unless that peer is a
proxy named in ``Settings.trusted_proxies``.  Then the one forwarding header the
proxies are configured to write (``Settings.forwarded_header``: ``X-Forwarded-For``
or RFC 7239 ``Forwarded``) is read as a list of hops, client first, each proxy
appending the address it received the request from.  Walking it from the right,
trusted hops are skipped and the first untrusted one is the client: everything to
its left was written by that client and proves nothing.  Only one header is read:
a proxy appends to one of them, and the other holds whatever the client sent.

Nothing here does I/O; :func:`client_of` is what :attr:`Context.client
<chopin_core.Context.client>`, the WSGI environ and the access log call.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, Protocol

from .errors import ConfigError

if TYPE_CHECKING:
    import socket

    from .request import Request

__all__ = ["FORWARDED_HEADERS", "Client", "Origin", "TrustedProxies", "client_of", "peer_pair"]

Client = tuple[str, int]
"""A client address: ``(host, port)``; the port is 0 when a proxy did not report it."""

FORWARDED_HEADERS: Final = ("x-forwarded-for", "forwarded")
"""The forwarding headers ``Settings.forwarded_header`` may name."""

# An address that is no address: a connection without a peer (a Unix socket).
_NOWHERE: Final[Client] = ("", 0)

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Origin(Protocol):
    """Where a request came from: an HTTP/1.1 connection or an HTTP/2 session.

    Attributes:
        peer: the socket's peer address as ``accept()`` returned it (None: unknown).
        sock: the socket (an :class:`ssl.SSLSocket` under TLS), or None in-process.
        proxies: the worker's trusted proxies, or None when none are configured.
    """

    peer: object
    proxies: TrustedProxies | None

    @property
    def sock(self) -> socket.socket | None: ...


def peer_pair(peer: object) -> Client:
    """``(host, port)`` of a socket address (an IPv6 one's flow and scope ids dropped)."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        return (str(peer[0]), int(peer[1]))
    return _NOWHERE


def client_of(origin: Origin | None, req: Request) -> Client:
    """The client of ``req``, which arrived over ``origin`` (see the module docstring)."""
    if origin is None:
        return _NOWHERE
    peer = peer_pair(origin.peer)
    proxies = origin.proxies
    if proxies is None:
        return peer
    return proxies.resolve(peer, req)


def _address(text: str) -> _Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack listener's view of an IPv4 client
    return address


class TrustedProxies:
    """The proxies whose forwarding header is believed, and which header that is.

    Args:
        networks: addresses or CIDR networks (``"10.0.0.0/8"``, ``"::1"``).
        header: ``"x-forwarded-for"`` or ``"forwarded"`` (RFC 7239), any case.

    Raises:
        ConfigError: a network or the header name is not valid.
    """

    __slots__ = ("_networks", "header")

    def __init__(self, networks: Iterable[str], header: str = "x-forwarded-for") -> None:
        parsed: list[_Network] = []
        for entry in networks:
            try:
                parsed.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ConfigError(f"trusted_proxies: expected an address or CIDR network, got {entry!r}") from None
        self._networks = tuple(parsed)
        self.header = header.strip().lower()
        if self.header not in FORWARDED_HEADERS:
            raise ConfigError(f"forwarded_header: expected one of {', '.join(FORWARDED_HEADERS)}, got {header!r}")

    def trusts(self, host: str) -> bool:
        """Whether ``host`` (an address as text) is one of the trusted proxies."""
        address = _address(host)
        return address is not None and any(address in network for network in self._networks)

    def resolve(self, peer: Client, req: Request) -> Client:
        """The client of ``req`` received from ``peer``: the rightmost hop that is not a trusted proxy.

        A hop the header gives as ``unknown``, obfuscated (RFC 7239 6.3) or malformed
        stops the walk at the trusted proxy to its right: that proxy is the client.
        """
        if not self.trusts(peer[0]):
            return peer
        values = req.headers.get_all(self.header)
        if not values:
            return peer
        hops = _forwarded_for(values) if self.header == "forwarded" else _x_forwarded_for(values)
        client = peer
        for hop in reversed(hops):
            if hop is None:
                return client
            client = hop
            if not self.trusts(hop[0]):
                return hop
        return client  # every hop is a trusted proxy: the leftmost is as far as is known

    def __repr__(self) -> str:
        return f"TrustedProxies({[str(n) for n in self._networks]!r}, header={self.header!r})"


def _node(text: str) -> Client | None:
    """One hop: ``192.0.2.1``, ``192.0.2.1:80``, ``2001:db8::1``, ``[2001:db8::1]:80`` (RFC 7239 6)."""
    text = text.strip()
    port = 0
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            return None
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return None
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, digits = text.partition(":")
        if not digits.isdigit():
            return None
        port = int(digits)
    else:
        host = text
    address = _address(host)
    if address is None or port > 65535:
        return None
    return (str(address), port)


def _x_forwarded_for(values: list[str]) -> list[Client | None]:
    """The hops of ``X-Forwarded-For`` fields, client first (repeated fields concatenate)."""
    return [_node(item) for value in values for item in value.split(",") if item.strip()]


def _forwarded_for(values: list[str]) -> list[Client | None]:
    """The ``for=`` node of each element of RFC 7239 ``Forwarded`` fields, client first.

    RFC 7239 4: ``Forwarded: for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https``.
    An element without ``for=`` is a hop that did not say (None).
    """
    hops: list[Client | None] = []
    for value in values:
        for element in _split_outside_quotes(value, ","):
            node: Client | None = None
            for pair in _split_outside_quotes(element, ";"):
                name, eq, raw = pair.partition("=")
                if eq and name.strip().lower() == "for":
                    raw = raw.strip()
                    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                        raw = raw[1:-1].replace("\\", "")  # quoted-string; a node holds no escapes anyway
                    node = _node(raw)
            hops.append(node)
    return hops


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` where it is not inside a quoted-string (RFC 9110 5.6.4); empty parts dropped."""
    parts: list[str] = []
    start = 0
    quoted = False
    escaped = False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]
