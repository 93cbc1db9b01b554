"""A minimal PostgreSQL client for the benchmark runners (stdlib only): trust auth, simple queries, text rows.

benchmarks/db_latency.py runs under the system python3 with no driver installed: it uses
this to create its database and tables, to count connections and to time ``SELECT 1``
through the delay proxy. Protocol 3.0, simple query flow only
(https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SIMPLE-QUERY).
"""

from __future__ import annotations

import socket
import struct

_HEADER = struct.Struct("!cI")
_INT16 = struct.Struct("!h")
_INT32 = struct.Struct("!i")
PROTOCOL_3_0 = 196608


class PgSimpleError(Exception):
    """The server answered with an ErrorResponse, or did something this client does not do."""


class PgSimple:
    """One connection; ``query(sql)`` returns the rows of the last result as lists of str/None."""

    def __init__(self, host: str, port: int, user: str, database: str, application_name: str = "chopin-bench") -> None:
        self.sock = socket.create_connection((host, port), timeout=30.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        params = {"user": user, "database": database, "application_name": application_name}
        body = _INT32.pack(PROTOCOL_3_0) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items())
        body += b"\0"
        self.sock.sendall(_INT32.pack(len(body) + 4) + body)
        self.parameters: dict[str, str] = {}
        while True:
            kind, payload = self._message()
            if kind == b"R" and _INT32.unpack_from(payload)[0] != 0:
                self.close()
                raise PgSimpleError("the server asked for a password; this client speaks trust auth only")
            if kind == b"S":
                name, value, _ = payload.split(b"\0", 2)
                self.parameters[name.decode()] = value.decode()
            elif kind == b"E":
                self.close()
                raise PgSimpleError(_error_text(payload))
            elif kind == b"Z":
                return

    def _recv_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise PgSimpleError("the server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _message(self) -> tuple[bytes, bytes]:
        kind, length = _HEADER.unpack(self._recv_exactly(5))
        return kind, self._recv_exactly(length - 4)

    def query(self, sql: str) -> list[list[str | None]]:
        """Run ``sql`` (one or more statements); the rows of the last row-returning one."""
        data = sql.encode() + b"\0"
        self.sock.sendall(b"Q" + _INT32.pack(len(data) + 4) + data)
        rows: list[list[str | None]] = []
        error = ""
        while True:
            kind, payload = self._message()
            if kind == b"T":
                rows = []
            elif kind == b"D":
                (count,) = _INT16.unpack_from(payload)
                offset, row = 2, []
                for _ in range(count):
                    (size,) = _INT32.unpack_from(payload, offset)
                    offset += 4
                    if size < 0:
                        row.append(None)
                    else:
                        row.append(payload[offset : offset + size].decode())
                        offset += size
                rows.append(row)
            elif kind == b"E":
                error = _error_text(payload)
            elif kind == b"Z":
                if error:
                    raise PgSimpleError(error)
                return rows

    def scalar(self, sql: str) -> str | None:
        """The first column of the first row of ``sql``."""
        rows = self.query(sql)
        return rows[0][0] if rows else None

    def close(self) -> None:
        try:
            self.sock.sendall(b"X" + _INT32.pack(4))
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> PgSimple:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error_text(payload: bytes) -> str:
    fields = {part[:1]: part[1:].decode(errors="replace") for part in payload.split(b"\0") if part}
    return f"{fields.get(b'C', '?')}: {fields.get(b'M', 'error')}"


def literal(value: str) -> str:
    """``value`` as an SQL string literal (standard_conforming_strings on, the default since 9.1)."""
    return "'" + value.replace("'", "''") + "'"
