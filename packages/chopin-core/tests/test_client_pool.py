"""The idle-connection pool with real socket pairs: caps, idle timeout, and stale sockets never handed out."""

from __future__ import annotations

import socket

from chopin_core._client_pool import ConnectionPool

KEY = ("127.0.0.1", 9)


def pair() -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    return ours, theirs


def test_newest_idle_socket_is_handed_out_first():
    pool = ConnectionPool(max_idle_per_host=4, idle_timeout=30.0)
    (a, pa), (b, pb) = pair(), pair()
    pool.checkin(KEY, a, 0.0)
    pool.checkin(KEY, b, 1.0)
    assert pool.idle_count(KEY) == 2
    assert pool.checkout(KEY, 2.0) is b
    assert pool.checkout(KEY, 2.0) is a
    assert pool.checkout(KEY, 2.0) is None
    assert pool.checkout(("127.0.0.1", 10), 2.0) is None
    for s in (a, b, pa, pb):
        s.close()


def test_past_the_cap_the_oldest_is_closed():
    pool = ConnectionPool(max_idle_per_host=2, idle_timeout=30.0)
    pairs = [pair() for _ in range(3)]
    for i, (ours, _) in enumerate(pairs):
        pool.checkin(KEY, ours, float(i))
    assert pool.idle_count() == 2
    assert pairs[0][0].fileno() == -1  # closed
    assert pairs[1][0].fileno() >= 0
    pool.close()
    assert pool.idle_count() == 0
    assert all(ours.fileno() == -1 for ours, _ in pairs)
    for _, theirs in pairs:
        theirs.close()


def test_a_zero_cap_keeps_nothing():
    pool = ConnectionPool(max_idle_per_host=0)
    ours, theirs = pair()
    pool.checkin(KEY, ours, 0.0)
    assert pool.idle_count() == 0
    assert ours.fileno() == -1
    theirs.close()


def test_idle_timeout_on_checkout_and_prune():
    pool = ConnectionPool(max_idle_per_host=4, idle_timeout=5.0)
    (a, pa), (b, pb) = pair(), pair()
    pool.checkin(KEY, a, 0.0)
    assert pool.checkout(KEY, 5.0) is None  # 5 s idle: too old
    assert a.fileno() == -1
    pool.checkin(KEY, b, 10.0)
    pool.prune(14.0)
    assert pool.idle_count() == 1
    pool.prune(15.0)
    assert pool.idle_count() == 0
    assert b.fileno() == -1
    pa.close()
    pb.close()


def test_a_socket_the_peer_closed_or_wrote_to_is_not_handed_out():
    pool = ConnectionPool()
    (closed, peer_closed), (chatty, peer_chatty), (good, peer_good) = pair(), pair(), pair()
    pool.checkin(KEY, good, 0.0)
    pool.checkin(KEY, chatty, 0.0)
    pool.checkin(KEY, closed, 0.0)
    peer_closed.close()
    peer_chatty.sendall(b"HTTP/1.1 408 Request Timeout\r\n\r\n")  # nobody asked
    assert pool.checkout(KEY, 1.0) is good
    assert closed.fileno() == -1
    assert chatty.fileno() == -1
    good.close()
    peer_chatty.close()
    peer_good.close()


def test_the_check_does_not_wait_on_a_socket_with_a_timeout():
    pool = ConnectionPool()
    ours, theirs = socket.socketpair()
    ours.settimeout(30.0)  # a blocking client's socket: the peek must not wait 30 s
    pool.checkin(KEY, ours, 0.0)
    assert pool.checkout(KEY, 0.0) is ours
    assert ours.gettimeout() == 30.0
    ours.close()
    theirs.close()
