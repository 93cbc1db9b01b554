"""Bare stdlib epoll loop: the ceiling of what CPython itself can serve.

Parses nothing: every b"\\r\\n\\r\\n" received is answered with one fixed,
pre-built plaintext response (Date refreshed once a second), one send per read.
Run with `PORT=8080 python benchmarks/peers/bare_epoll.py`.
"""

import os
import select
import socket
import sys
import time

SEP = b"\r\n\r\n"


def build_response() -> bytes:
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()).encode()
    return (
        b"HTTP/1.1 200 OK\r\nServer: bare-epoll\r\nDate: " + date + b"\r\n"
        b"Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
    )


def main() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", int(os.environ.get("PORT", "8080"))))
    listener.listen(4096)
    listener.setblocking(False)
    lfd = listener.fileno()
    ep = select.epoll()
    ep.register(lfd, select.EPOLLIN)
    conns: dict[int, socket.socket] = {}
    tails: dict[int, bytes] = {}  # bytes after the last SEP, kept for the next read
    unsent: dict[int, bytes] = {}  # output a full socket buffer refused
    second, response = int(time.time()), build_response()
    while True:
        events = ep.poll(1.0)
        if int(time.time()) != second:
            second, response = int(time.time()), build_response()
        for fd, mask in events:
            if fd == lfd:
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[sock.fileno()], tails[sock.fileno()] = sock, b""
                    ep.register(sock.fileno(), select.EPOLLIN)
                continue
            sock = conns[fd]
            try:
                if mask & select.EPOLLOUT:
                    out = unsent.pop(fd)
                else:
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionResetError
                    buf = tails[fd] + data
                    count = buf.count(SEP)
                    tails[fd] = buf[buf.rfind(SEP) + 4 :] if count else buf
                    if not count:
                        continue
                    out = response * count
                try:
                    sent = sock.send(out)
                except BlockingIOError:
                    sent = 0
                if sent < len(out):
                    unsent[fd] = out[sent:]
                    ep.modify(fd, select.EPOLLOUT)
                elif mask & select.EPOLLOUT:
                    ep.modify(fd, select.EPOLLIN)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                ep.unregister(fd)
                conns.pop(fd).close()
                tails.pop(fd, None)
                unsent.pop(fd, None)


if __name__ == "__main__":
    if sys.argv[1:]:  # no options: only PORT configures it
        print(__doc__)
        sys.exit(0 if sys.argv[1] in ("-h", "--help") else 2)
    main()
