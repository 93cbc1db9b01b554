"""Rate limiting per client: token buckets in memory shared by every worker of a server.

How it works: :func:`rate_limit` makes a :class:`BucketTable` when it is called, which
is while the app is built, in the process that later forks the workers, so every
worker maps the same memory.  The table is a fixed array of ``size`` buckets
(``key, tokens, stamp``; 32 bytes each) in a ``memfd`` mapped ``MAP_SHARED``.  A
client's key (its address, see :func:`client_key`) hashes to a home slot (Python's
``hash`` of bytes: SipHash keyed by the interpreter's random seed (unless
``PYTHONHASHSEED`` fixes it), which the forked
workers share with the process that made the table, so clients cannot aim at one
window and every worker finds the same slot); the bucket lives in one of the ``PROBE`` slots from there
(open addressing, linear probing, no wrap: the array has ``PROBE`` spare slots at
its end).

Exactness across processes: each decision (read the bucket, refill it for the time
passed, take a token or refuse, write it back) happens while the process holds a
POSIX record lock (``fcntl.lockf``) on the bytes of that key's ``PROBE`` slots, so
two workers deciding for the same client take turns, and workers deciding for
clients in other slots do not wait for each other.  Why this lock and not another:

- it is per process, which is what is needed after ``fork`` (an open-file-description
  lock, ``F_OFD_SETLK``, would be shared by the workers, who inherit one description);
  a ``threading.Lock`` beside it keeps threads of one process apart;
- the kernel releases it when its holder dies: a worker killed inside the critical
  section (the supervisor restarts it) cannot leave the table locked, which a spinlock
  in the shared memory would;
- it costs two ``fcntl`` calls per limited request (about a microsecond), and needs
  no C.

Time is ``time.monotonic()``: ``CLOCK_MONOTONIC``, one clock for every process.

Bounded memory: ``size`` buckets, fixed when the table is made.  A new client takes
an empty slot of its window, else a slot whose bucket has refilled completely (its
client has been away long enough that forgetting it changes nothing), else the slot
used least recently: that client is forgotten early and, when it comes back, starts
again with a full bucket.  So a table too small for the clients active within
``burst / per_second`` seconds lets those evicted clients through more often than the
limit says; it never refuses a client that is within its limit.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .error_handlers import error_body
from .middleware import with_async_form
from .response import Response

if TYPE_CHECKING:
    from .context import Context
    from .types import AsyncHandler, Handler, Middleware

__all__ = ["PROBE", "RATE_LIMIT_TABLE_SIZE", "BucketTable", "Decision", "client_key", "rate_limit"]

RATE_LIMIT_TABLE_SIZE: Final = 65536
"""Buckets in a :func:`rate_limit` table by default (2 MiB of shared memory)."""

PROBE: Final = 8
"""Slots a key may occupy from its home slot (the window locked for one decision)."""

# One bucket: the client's 16-byte key, its tokens, and when they were counted
# (time.monotonic(); 0.0 marks a slot never used).
_ENTRY: Final = struct.Struct("=16sdd")
_ENTRY_SIZE: Final = _ENTRY.size
# The first 12 bytes of an IPv4-mapped IPv6 address (RFC 4291 2.5.5.2).
_V4_MAPPED: Final = b"\0" * 10 + b"\xff\xff"


class Decision:
    """What the table decided for one request.

    Attributes:
        allowed: whether the request may go on (a token was taken).
        remaining: whole tokens left after this request.
        retry_after: seconds until the next token, when refused (0.0 when allowed).
        reset: seconds until the bucket is full again.
    """

    __slots__ = ("allowed", "remaining", "reset", "retry_after")

    def __init__(self, allowed: bool, remaining: int, retry_after: float, reset: float) -> None:
        self.allowed = allowed
        self.remaining = remaining
        self.retry_after = retry_after
        self.reset = reset

    def __repr__(self) -> str:
        return f"Decision(allowed={self.allowed}, remaining={self.remaining}, retry_after={self.retry_after:.3f})"


class BucketTable:
    """Token buckets keyed by 16-byte keys, shared by the processes forked after it is made.

    Args:
        per_second: tokens added to a bucket per second.
        burst: a bucket's capacity (and a new client's tokens).
        size: buckets the table holds (see the module docstring for what happens when full).

    Raises:
        ValueError: a rate or burst that is not positive, or a size below 1.
    """

    __slots__ = ("_fd", "_map", "_size", "_thread_lock", "burst", "per_second")

    def __init__(self, per_second: float, burst: int, size: int = RATE_LIMIT_TABLE_SIZE) -> None:
        if not (per_second > 0 and math.isfinite(per_second)):
            raise ValueError(f"rate_limit: per_second must be a positive number, got {per_second!r}")
        if burst < 1:
            raise ValueError(f"rate_limit: burst must be >= 1, got {burst!r}")
        if size < 1:
            raise ValueError(f"rate_limit: table size must be >= 1, got {size!r}")
        self.per_second = float(per_second)
        self.burst = int(burst)
        self._size = size
        self._thread_lock = threading.Lock()
        length = (size + PROBE) * _ENTRY_SIZE
        # An unnamed file, so the mapping can be locked by byte ranges.  Forked workers keep
        # the descriptor (MFD_CLOEXEC, the default flag, closes it only across exec).
        self._fd = os.memfd_create("chopin-rate-limit")
        os.ftruncate(self._fd, length)
        self._map = mmap.mmap(self._fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)

    @property
    def size(self) -> int:
        """Buckets the table holds."""
        return self._size

    def _home(self, key: bytes) -> int:
        # hash() is the same in every process forked from the one that made the table
        # (the seed is inherited), which is how the table is shared at all.
        return hash(key) % self._size

    def take(self, key: bytes, now: float | None = None) -> Decision:
        """Take one token from ``key``'s bucket, or refuse; exact across processes (module docstring).

        Args:
            key: the client's 16-byte key (:func:`client_key`).
            now: ``time.monotonic()`` (read here when omitted).
        """
        home = self._home(key)
        start = home * _ENTRY_SIZE
        window = PROBE * _ENTRY_SIZE
        rate = self.per_second
        burst = float(self.burst)
        buf = self._map
        with self._thread_lock:
            fcntl.lockf(self._fd, fcntl.LOCK_EX, window, start, os.SEEK_SET)
            try:
                if now is None:
                    now = time.monotonic()  # read under the lock: stamps only move forward
                slot = -1
                free = -1
                full = -1
                oldest = -1
                oldest_stamp = math.inf
                tokens = burst
                for i in range(home, home + PROBE):
                    entry_key, entry_tokens, stamp = _ENTRY.unpack_from(buf, i * _ENTRY_SIZE)
                    if stamp == 0.0:
                        if free < 0:
                            free = i
                        continue
                    if entry_key == key:
                        slot = i
                        tokens = min(burst, entry_tokens + max(0.0, now - stamp) * rate)
                        break
                    if full < 0 and entry_tokens + (now - stamp) * rate >= burst:
                        full = i
                    if stamp < oldest_stamp:
                        oldest, oldest_stamp = i, stamp
                if slot < 0:
                    # A new client (or one forgotten): a free slot, a full bucket, else the least recent.
                    slot = free if free >= 0 else full if full >= 0 else oldest
                allowed = tokens >= 1.0
                if allowed:
                    tokens -= 1.0
                _ENTRY.pack_into(buf, slot * _ENTRY_SIZE, key, tokens, now)
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, window, start, os.SEEK_SET)
        retry = 0.0 if allowed else (1.0 - tokens) / rate
        return Decision(allowed, int(tokens), retry, (burst - tokens) / rate)

    def close(self) -> None:
        """Unmap the table and close its descriptor (other processes keep theirs)."""
        self._map.close()
        os.close(self._fd)


def client_key(host: str, ipv6_prefix: int = 64) -> bytes:
    """The 16-byte bucket key of a client address.

    An IPv4 address is its IPv4-mapped IPv6 form; an IPv6 address is cut to its first
    ``ipv6_prefix`` bits (one customer usually holds a whole /64 and can pick any
    address in it); anything else (a name) is hashed.
    """
    # inet_pton, not ipaddress: a tenth of the time, and this runs per limited request.
    try:
        return _V4_MAPPED + socket.inet_pton(socket.AF_INET, host)
    except OSError:
        pass
    try:
        packed = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
    except OSError:
        return hashlib.blake2b(host.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    if packed.startswith(_V4_MAPPED):
        return packed
    bits = int.from_bytes(packed, "big") >> (128 - ipv6_prefix) << (128 - ipv6_prefix)
    return bits.to_bytes(16, "big")


def rate_limit(
    *,
    per_second: float,
    burst: int,
    table_size: int = RATE_LIMIT_TABLE_SIZE,
    ipv6_prefix: int = 64,
    key: Callable[[Context], str] | None = None,
) -> Middleware:
    """Limit each client to ``per_second`` requests a second, ``burst`` at once, across all workers.

    A token bucket per client address (``ctx.client``, so behind
    ``Settings.trusted_proxies`` the forwarded client): it holds up to ``burst``
    tokens, refills at ``per_second``, and each request takes one.  A request that
    finds no token is answered ``429 Too Many Requests`` without calling the handler,
    with ``Retry-After`` (whole seconds until a token is back).  Every answer carries
    ``RateLimit-Limit`` (``burst``), ``RateLimit-Remaining`` and ``RateLimit-Reset``
    (whole seconds until the bucket is full), as draft-ietf-httpapi-ratelimit-headers-06
    names them.  The buckets live in one shared table (:class:`BucketTable`) made
    here: call this while building the app, before ``serve()`` forks the workers, and
    the limit is exact across them.  Each call makes its own table: two layers limit
    separately.

    Args:
        per_second: tokens a bucket gains per second (may be below 1: ``1/60`` is one a minute).
        burst: tokens a bucket holds: requests a client may make at once.
        table_size: buckets in the table (``RATE_LIMIT_TABLE_SIZE``, 65536: 2 MiB); past
            it the least recently seen clients are forgotten (see :mod:`chopin_core.ratelimit`).
        ipv6_prefix: IPv6 clients are counted per network of this many bits (64: a /64).
        key: count per ``key(ctx)`` instead of per client address (an API key, a user id).

    Raises:
        ValueError: ``per_second`` or ``burst`` not positive, ``table_size`` below 1,
            or ``ipv6_prefix`` outside 1..128.
    """
    if not 1 <= ipv6_prefix <= 128:
        raise ValueError(f"rate_limit: ipv6_prefix must be 1..128, got {ipv6_prefix!r}")
    table = BucketTable(per_second, burst, table_size)
    limit_value = str(table.burst)
    monotonic = time.monotonic

    def decide(ctx: Context) -> Decision:
        if key is None:
            bucket = client_key(ctx.client[0], ipv6_prefix)
        else:
            bucket = hashlib.blake2b(key(ctx).encode("utf-8", "surrogatepass"), digest_size=16).digest()
        return table.take(bucket, monotonic())

    def refused(ctx: Context, decision: Decision) -> Response:
        retry = max(1, math.ceil(decision.retry_after))
        resp = error_body(ctx.req, 429, f"Too Many Requests: try again in {retry} s")
        resp.with_header("Retry-After", str(retry))
        return headers(resp, decision)

    def headers(resp: Response, decision: Decision) -> Response:
        resp.with_header("RateLimit-Limit", limit_value)
        resp.with_header("RateLimit-Remaining", str(decision.remaining))
        return resp.with_header("RateLimit-Reset", str(math.ceil(decision.reset)))

    def rate_limit_middleware(ctx: Context, nxt: Handler) -> Response:
        decision = decide(ctx)
        if not decision.allowed:
            return refused(ctx, decision)
        return headers(nxt(ctx), decision)

    async def rate_limit_waiting(ctx: Context, nxt: AsyncHandler) -> Response:
        decision = decide(ctx)
        if not decision.allowed:
            return refused(ctx, decision)
        return headers(await nxt(ctx), decision)

    middleware = with_async_form(rate_limit_middleware, rate_limit_waiting)
    middleware.table = table  # type: ignore[attr-defined]  # for tests and introspection
    return middleware
