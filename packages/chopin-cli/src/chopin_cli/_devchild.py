"""The child process of ``chopin dev``: import the app, say so, serve it.

Run as ``python -m chopin_cli._devchild SPEC HOST:PORT STATUS_FD PATH...``.  It writes
``imported`` to the status pipe once the app imported and its routes compiled, and
``listening`` once the engine bound its socket; an import failure is printed as a
traceback (the user's code is at fault, they need to see where) and exits with 3.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from .apploader import load_app
from .errors import AppLoadError

IMPORT_FAILED = 3


class _ListeningHandler(logging.Handler):
    """Tells the supervisor when the engine logs that it serves (its socket is bound)."""

    def __init__(self, fd: int) -> None:
        super().__init__(logging.INFO)
        self.fd = fd
        self.sent = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.sent and record.getMessage().startswith("chopin serving"):
            self.sent = True
            _send(self.fd, "listening")


def _send(fd: int, word: str) -> None:
    try:
        os.write(fd, word.encode() + b"\n")
    except OSError:
        pass  # the supervisor went away; serving goes on until it signals us


#: Seconds between checks that the ``chopin dev`` supervisor is still alive.
PARENT_POLL = 1.0


def _stop_when_orphaned(parent: int) -> None:
    """SIGTERM ourselves (a graceful stop) when the supervisor dies without stopping us (kill -9)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL)
    os.kill(os.getpid(), signal.SIGTERM)


def _print_user_traceback(exc: BaseException) -> None:
    """The traceback without the import machinery's and chopin-cli's own frames."""
    summary = traceback.TracebackException.from_exception(exc)
    own = f"{os.sep}chopin_cli{os.sep}"
    hidden = ("<frozen", "importlib")
    frames = [f for f in summary.stack if own not in f.filename and not any(h in f.filename for h in hidden)]
    summary.stack = traceback.StackSummary.from_list(frames)
    print("".join(summary.format()), end="", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    spec, address, fd_s, *paths = argv
    fd = int(fd_s)
    os.set_inheritable(fd, False)
    try:
        app = load_app(spec, [Path(p) for p in paths])
        app.compile()  # route conflicts surface here, before the old child is stopped
    except AppLoadError as exc:
        if exc.__cause__ is not None:
            _print_user_traceback(exc.__cause__)
        print(f"chopin dev: {exc}", file=sys.stderr, flush=True)
        return IMPORT_FAILED
    except Exception as exc:
        _print_user_traceback(exc)
        return IMPORT_FAILED
    server_log = logging.getLogger("chopin_core.server")
    server_log.addHandler(_ListeningHandler(fd))
    if server_log.getEffectiveLevel() > logging.INFO:
        server_log.setLevel(logging.INFO)
    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), name="orphan-watch", daemon=True).start()
    _share_the_port(app)
    _send(fd, "imported")
    if hasattr(app, "serve"):
        app.serve(address)
    else:
        from chopin_core import Chopin

        Chopin(app).serve(address)
    return 0


def _share_the_port(app: object) -> None:
    """Let this child bind the port its predecessor still serves (a reload is a rolling restart).

    The engine refuses a port another process listens on unless asked to share it;
    ``chopin dev`` checked that nothing else served the port before its first child.
    """
    from chopin_core import Chopin

    os.environ["CHOPIN_REUSE_PORT_SHARED"] = "1"  # for settings read from the environment
    if isinstance(app, Chopin) and app.settings is not None:
        app.settings = app.settings.replace(reuse_port_shared=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
