"""Values and helpers the chopin-auth tests share (a module name no other test directory uses)."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"
SECRET = "test-secret-0123456789abcdef-0123456789"  # 39 bytes: over the 32-byte minimum


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])
