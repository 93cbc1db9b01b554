"""Fixtures for chopin-auth: keys made once per session, a clean registry per test, and real servers.

``serve_auth_app("auth_apps.guarded:router", workers=1, env={...})`` starts the app in
a subprocess on a free port (``tests/`` is on its path), waits (bounded) until it
accepts a connection and returns its base URL; at teardown it gets SIGTERM and must
exit within 15 s.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from auth_testing import HOST, SECRET, free_port
from chopin_auth.registry import _REGISTRY
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, settings

# Hypothesis's timing checks judge the machine, not the code: on a shared CI machine one
# draw can stall for seconds (seen: test_bind_encoder, 1.96 s for one input).  The
# properties are checked as before; only the too_slow health check and the deadline go.
settings.register_profile("chopin", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("chopin")

TESTS_DIR = Path(__file__).resolve().parent

_BOOTSTRAP = """\
import importlib, json, sys
spec = json.loads(sys.argv[1])
sys.path[:0] = spec["sys_path"]
from chopin_core import Chopin, Router
module_name, _, attr = spec["app"].partition(":")
found = getattr(importlib.import_module(module_name), attr)
if not isinstance(found, (Chopin, Router)):
    found = found()  # a factory, called in the server process
app = found if isinstance(found, Chopin) else Chopin(found)
app.serve("127.0.0.1:0")
"""


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    """Each test starts with no JWT manager and the default error handler installed."""
    _REGISTRY.clear()
    yield
    _REGISTRY.clear()


def _pem_pair(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.fixture(scope="session")
def rsa_pems() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a 2048-bit RSA key."""
    return _pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def other_rsa_pems() -> tuple[bytes, bytes]:
    """Another RSA key pair, to sign tokens the first key must refuse."""
    return _pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def ec_pems() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a P-256 key."""
    return _pem_pair(ec.generate_private_key(ec.SECP256R1()))


class _Servers:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, app: str, workers: int = 1, env: dict[str, str] | None = None) -> str:
        port = free_port()
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("CHOPIN_", "PG"))}
        child_env.update(PORT=str(port), WORKERS=str(workers), PYTHONUNBUFFERED="1", AUTH_TEST_SECRET=SECRET)
        child_env.update(env or {})
        spec = json.dumps({"app": app, "sys_path": [str(TESTS_DIR)]})
        log_path = self.log_dir / f"server-{len(self.started)}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, spec],
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.started.append((process, log_path))
        deadline = time.monotonic() + 15.0
        while True:
            if process.poll() is not None:
                pytest.fail(f"{app} exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                with socket.create_connection((HOST, port), timeout=0.5):
                    return f"http://{HOST}:{port}"
            except OSError:
                pass
            if time.monotonic() >= deadline:
                pytest.fail(f"{app} did not accept on port {port} within 15 s:\n{log_path.read_text()}")
            time.sleep(0.05)

    def stop_all(self) -> list[str]:
        problems = []
        for process, log_path in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15.0)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5.0)
            if process.returncode != 0:
                problems.append(f"{process.args[-1]} exited with {process.returncode}:\n{log_path.read_text()}")
        return problems


@pytest.fixture(scope="module")
def serve_auth_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """Start ``module:attribute`` (a Router or Chopin) in a subprocess; return its base URL."""
    servers = _Servers(tmp_path_factory.mktemp("auth-server"))
    yield servers.start
    problems = servers.stop_all()
    if problems:
        pytest.fail("\n".join(problems))
