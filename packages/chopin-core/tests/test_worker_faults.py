"""Faults the worker must contain, over real sockets (issue 15, items 1, 10, 15 and 16).

A peer's bytes or an application's bug may end one request or one connection,
never the worker: each test runs one worker (in-process, no supervisor to
restart it) and checks that the same process serves a fresh connection afterwards.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("apps.faults_app:app", workers=1)


def assert_same_worker_serves(server, connect, pid: bytes) -> None:
    assert server.process.poll() is None, server.stderr_text()
    resp = connect(server).request("GET", "/pid")
    assert (resp.status, resp.body) == (200, pid)


def test_non_ascii_http_version_is_answered_and_the_worker_keeps_serving(server, connect):
    pid = connect(server).request("GET", "/pid").body
    conn = connect(server)
    conn.send(b"GET / HTTP/1\x801\r\nHost: a\r\n\r\n")
    resp = conn.read_response()
    assert resp.status == 505
    assert b"HTTP/1\\x801" in resp.body
    conn.assert_closed_by_server()
    assert_same_worker_serves(server, connect, pid)


def test_stream_failing_before_its_first_chunk_is_a_500_between_pipelined_answers(server, connect):
    conn = connect(server)
    conn.send(conn.build("GET", "/") + conn.build("GET", "/stream/fails-at-once") + conn.build("GET", "/"))
    first, failed, last = (conn.read_response() for _ in range(3))
    assert (first.status, first.body) == (200, b"hello")
    assert (failed.status, failed.body) == (500, b"Internal Server Error")
    assert (last.status, last.body) == (200, b"hello")
    server.wait_for_stderr("RuntimeError: stream failed before its first chunk")
    assert conn.request("GET", "/").status == 200  # the connection itself carries on


def test_stream_failing_after_its_head_aborts_but_delivers_the_earlier_pipelined_answer(server, connect):
    conn = connect(server)
    conn.send(conn.build("GET", "/") + conn.build("GET", "/stream/fails-later") + conn.build("GET", "/"))
    first = conn.read_response()
    assert (first.status, first.body) == (200, b"hello")
    # The stream's head and first chunk come, then the connection ends without the terminal chunk.
    head = conn.read_head()
    assert head.status == 200 and head.header("transfer-encoding") == "chunked"
    rest = conn.read_until_close()
    assert rest == b"9\r\npart one|\r\n"
    server.wait_for_stderr("RuntimeError: stream failed after its first chunk")
    pid = connect(server).request("GET", "/pid").body
    assert_same_worker_serves(server, connect, pid)


def test_unexpected_worker_error_closes_only_that_connection(server, connect):
    pid = connect(server).request("GET", "/pid").body
    bystander = connect(server)
    assert bystander.request("GET", "/").status == 200
    victim = connect(server)
    victim.send(victim.build("GET", "/stream/bad-chunk"))
    rest = victim.read_until_close()  # closed: that answer cannot be completed
    assert not rest.endswith(b"0\r\n\r\n")
    stderr = server.wait_for_stderr("unexpected error on fd")
    assert "Traceback (most recent call last)" in stderr and "TypeError" in stderr
    # The other connection, open all along, is still served by the same worker.
    assert bystander.request("GET", "/pid").body == pid
    assert_same_worker_serves(server, connect, pid)


def test_status_outside_100_to_599_is_refused_with_a_500(server, connect):
    resp = connect(server).request("GET", "/status/999")
    assert resp.status == 500
    server.wait_for_stderr("ValueError: status: expected an integer in 100..599, got 999")


def test_5xx_from_an_extractor_error_is_logged_with_its_traceback(server, connect):
    resp = connect(server).request("GET", "/extract-500")
    assert resp.status == 500
    stderr = server.wait_for_stderr("ExtractError: extension not configured: secret detail")
    assert "worker 0: handler for GET /extract-500 failed" in stderr
    assert "Traceback (most recent call last)" in stderr
