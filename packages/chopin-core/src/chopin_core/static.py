"""A ready-made static file server: ``python -m chopin_core.static``.

The command line mirrors hachettp's ``ht``::

    python -m chopin_core.static                      # serve . on :8080, one worker per CPU
    python -m chopin_core.static -p 9090 -d ./public -w 8
    python -m chopin_core.static -i index.htm --no-list
    python -m chopin_core.static --no-index --no-list  # files only; directories get 404
    python -m chopin_core.static --cache-valid 0      # check kept files on disk at every request

It mounts the directory at ``/`` with :meth:`Router.static` (small files kept in
memory and checked on disk once a second, ``sendfile`` from the worker loop for the
others, ranges, ``ETag``/304, ``.br``/``.gz`` sidecars, no way out of the directory)
and serves it with :class:`Chopin` until SIGTERM/SIGINT, which finish in-flight
requests and exit 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys

from .connection import probe_port
from .errors import ConfigError
from .filecache import DEFAULT_FILE_CACHE, FileCacheLimits
from .router import Router
from .server import Chopin
from .settings import Settings

__all__ = ["build_parser", "build_router", "main"]

PROG = "python -m chopin_core.static"


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (flags as in hachettp's ``ht``).

    Returns:
        A parser whose namespace has ``port``, ``dir``, ``workers``, ``index``,
        ``no_index``, ``no_list``, ``bind``, ``cache_valid`` and ``no_cache``.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve a directory over HTTP/1.1 with chopin-core (sendfile, ranges, ETag/304).",
        epilog=(
            "Directories without the index file get an HTML listing unless --no-list; "
            "paths leaving DIR (.., symlinks out of it) get 404. "
            "SIGTERM or Ctrl-C finishes in-flight requests and exits 0. "
            "Engine limits come from the CHOPIN_* environment variables."
        ),
    )
    parser.add_argument("-p", "--port", type=int, default=8080, help="TCP port to listen on (default: 8080)")
    parser.add_argument("-d", "--dir", default=".", help="directory to serve (default: .)")
    cpus = os.cpu_count() or 1
    parser.add_argument(
        "-w", "--workers", type=int, default=None, help=f"worker processes (default: the CPU count, {cpus} here)"
    )
    parser.add_argument(
        "-i", "--index", default="index.html", metavar="FILE", help="index file of a directory (default: index.html)"
    )
    parser.add_argument("--no-index", action="store_true", help="do not look for an index file in directories")
    parser.add_argument("--no-list", action="store_true", help="no generated directory listings (404 instead)")
    parser.add_argument("-b", "--bind", default="0.0.0.0", metavar="HOST", help="address to bind (default: 0.0.0.0)")
    default = DEFAULT_FILE_CACHE
    parser.add_argument(
        "--cache-valid",
        type=float,
        default=default.valid,
        metavar="SECONDS",
        help=f"serve a file kept in memory this long before checking it on disk again; 0 checks on every "
        f"request (default: {default.valid:g})",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help=f"keep no file in memory (default: files up to {default.max_file_size // 1024} KiB, "
        f"{default.max_bytes // (1024 * 1024)} MiB per worker)",
    )
    return parser


def build_router(
    directory: str, *, index: str | None, listing: bool, cache: FileCacheLimits | None = DEFAULT_FILE_CACHE
) -> Router:
    """A router serving ``directory`` at ``/`` (GET and HEAD).

    Args:
        directory: the document root.
        index: the file a directory serves, or ``None`` for none.
        listing: whether a directory without an index gets an HTML listing.
        cache: what is kept in memory (:mod:`chopin_core.filecache`), or ``None``.

    Returns:
        The router.

    Raises:
        FileNotFoundError: ``directory`` is not a directory.
    """
    return Router().static("/", directory, index=index, listing=listing, cache=cache)


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse bad values the way argparse does: usage, a message, exit 2."""
    if not 0 <= args.port <= 65535:
        parser.error(f"-p/--port: expected 0..65535, got {args.port}")
    if args.workers is not None and args.workers < 1:
        parser.error(f"-w/--workers: expected at least 1, got {args.workers}")
    if not args.index or "/" in args.index or args.index in (".", ".."):
        parser.error(f"-i/--index: expected a file name, got {args.index!r}")
    if not os.path.exists(args.dir):
        parser.error(f"-d/--dir: {args.dir!r} does not exist")
    if not os.path.isdir(args.dir):
        parser.error(f"-d/--dir: {args.dir!r} is not a directory")
    if not os.access(args.dir, os.R_OK | os.X_OK):
        parser.error(f"-d/--dir: {args.dir!r} is not readable")
    if not math.isfinite(args.cache_valid) or args.cache_valid < 0:
        parser.error(f"--cache-valid: expected a number of seconds >= 0, got {args.cache_valid}")


def _resolve_port(host: str, port: int, shared: bool) -> int:
    """Bind once to fail early on a taken port or a bad address, and to fix port 0.

    The workers bind their own ``SO_REUSEPORT`` sockets to the port afterwards; a
    port another server listens on counts as taken unless ``shared``
    (``CHOPIN_REUSE_PORT_SHARED``).

    Raises:
        OSError: the address cannot be bound, or is taken
            (:class:`~chopin_core.errors.AddressInUse`).
    """
    return probe_port(host, port, shared=shared)


def main(argv: list[str] | None = None) -> int:
    """Run the static file server until SIGTERM/SIGINT.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when omitted.

    Returns:
        The exit status: 0 after a graceful stop, 1 when the server cannot
        start (address in use, bad ``CHOPIN_*`` environment).  Invalid
        arguments exit 2 through argparse.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    directory = os.path.realpath(args.dir)
    workers: int = args.workers if args.workers is not None else os.cpu_count() or 1
    index = None if args.no_index else args.index
    cache = None if args.no_cache else dataclasses.replace(DEFAULT_FILE_CACHE, valid=args.cache_valid)
    router = build_router(directory, index=index, listing=not args.no_list, cache=cache)
    try:
        # Explicit flags win over PORT/WORKERS; the CHOPIN_* limits still apply.
        settings = Settings.from_env(host=args.bind, port=args.port, workers=workers)
        port = _resolve_port(args.bind, args.port, settings.reuse_port_shared)
        settings = settings.replace(port=port)
    except ConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG}: error: cannot listen on {args.bind}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    shown = f"[{args.bind}]" if ":" in args.bind else args.bind
    plural = "worker" if workers == 1 else "workers"
    print(f"serving {directory} on http://{shown}:{port}/ ({workers} {plural}, pid {os.getpid()})", flush=True)
    Chopin(router, settings).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
