"""Settings: defaults, validation and from_env (PORT, WORKERS, CHOPIN_*)."""

from __future__ import annotations

import os

import pytest
from chopin_core.errors import ConfigError
from chopin_core.settings import Settings

ENV_FIELDS = [
    ("PORT", "port", "9000", 9000),
    ("WORKERS", "workers", "3", 3),
    ("CHOPIN_SLAB_CAPACITY", "slab_capacity", "500", 500),
    ("CHOPIN_EPOLL_TIMEOUT_MS", "epoll_timeout_ms", "0", 0),
    ("CHOPIN_MAX_HEAD_SIZE", "max_request_head_size", "4096", 4096),
    ("CHOPIN_MAX_HEADER_COUNT", "max_header_count", "20", 20),
    ("CHOPIN_MAX_URI_LENGTH", "max_uri_length", "1024", 1024),
    ("CHOPIN_MAX_BODY_SIZE", "max_body_size", "1048576", 1048576),
    ("CHOPIN_KEEPALIVE_TIMEOUT", "keepalive_timeout", "2.5", 2.5),
    ("CHOPIN_HEADER_TIMEOUT", "header_timeout", "3", 3.0),
    ("CHOPIN_SHUTDOWN_GRACE", "shutdown_grace", "0.5", 0.5),
]


def test_defaults_are_valid() -> None:
    s = Settings()
    assert s.port == 8080
    assert s.max_request_head_size == 16 * 1024
    assert s.max_body_size == 10 * 1024 * 1024
    assert s.pin_workers is False


@pytest.mark.parametrize(("var", "field", "raw", "value"), ENV_FIELDS, ids=[v for v, *_ in ENV_FIELDS])
def test_from_env_reads_each_variable(var: str, field: str, raw: str, value: object) -> None:
    s = Settings.from_env({var: raw})
    assert getattr(s, field) == value
    assert type(getattr(s, field)) is type(value)


def test_from_env_reads_all_together() -> None:
    s = Settings.from_env({var: raw for var, _, raw, _ in ENV_FIELDS})
    for _, field, _, value in ENV_FIELDS:
        assert getattr(s, field) == value


def test_from_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8181")
    monkeypatch.setenv("CHOPIN_MAX_URI_LENGTH", "777")
    s = Settings.from_env()
    assert (s.port, s.max_uri_length) == (8181, 777)


def test_from_env_ignores_unset_and_empty_variables() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"PORT": "", "WORKERS": ""}) == Settings()
    assert Settings.from_env({"UNRELATED": "x"}) == Settings()


def test_from_env_overrides_win() -> None:
    s = Settings.from_env({"PORT": "9000", "WORKERS": "4"}, port=1234, host="127.0.0.1")
    assert (s.port, s.workers, s.host) == (1234, 4, "127.0.0.1")


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("yes", True), ("0", False), ("false", False), ("no", False)])
def test_from_env_pin_workers(raw: str, value: bool) -> None:
    assert Settings.from_env({"CHOPIN_PIN_WORKERS": raw}).pin_workers is value


@pytest.mark.parametrize("raw", ["off", "False", "NO"])
def test_from_env_pin_workers_off_words(raw: str) -> None:
    assert Settings.from_env({"CHOPIN_PIN_WORKERS": raw}).pin_workers is False


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("PORT", "http"),
        ("PORT", "80.5"),
        ("WORKERS", "four"),
        ("CHOPIN_SLAB_CAPACITY", "1e4"),
        ("CHOPIN_MAX_BODY_SIZE", "10MB"),
        ("CHOPIN_KEEPALIVE_TIMEOUT", "soon"),
        ("CHOPIN_HEADER_TIMEOUT", "10s"),
    ],
)
def test_from_env_bad_number_names_the_variable(var: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({var: raw})
    assert var in str(info.value)
    assert repr(raw) in str(info.value)


@pytest.mark.parametrize("raw", ["nan", "inf"])
def test_from_env_non_finite_timeout_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="CHOPIN_KEEPALIVE_TIMEOUT"):
        Settings.from_env({"CHOPIN_KEEPALIVE_TIMEOUT": raw})


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("PORT", "-1"),
        ("WORKERS", "-2"),
        ("CHOPIN_SLAB_CAPACITY", "-5"),
        ("CHOPIN_MAX_HEAD_SIZE", "-1"),
        ("CHOPIN_MAX_BODY_SIZE", "-100"),
        ("CHOPIN_KEEPALIVE_TIMEOUT", "-0.5"),
        ("CHOPIN_SHUTDOWN_GRACE", "-1"),
    ],
)
def test_from_env_negative_value_is_refused(var: str, raw: str) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env({var: raw})


@pytest.mark.parametrize(
    "changes",
    [{"port": 65536}, {"port": -1}, {"slab_capacity": 0}, {"backlog": -1}, {"recv_size": -1}],
    ids=["port-high", "port-negative", "slab-zero", "backlog", "recv-size"],
)
def test_constructor_validates(changes: dict[str, int]) -> None:
    with pytest.raises(ConfigError) as info:
        Settings(**changes)  # type: ignore[arg-type]
    assert next(iter(changes)) in str(info.value)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Settings(port=70000)


def test_replace_revalidates() -> None:
    s = Settings().replace(port=0)
    assert s.port == 0
    with pytest.raises(ConfigError):
        s.replace(port=99999)


def test_worker_count() -> None:
    assert Settings(workers=3).worker_count == 3
    assert Settings(workers=0).worker_count == (os.cpu_count() or 1)


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("h2_max_concurrent_streams", 0, "expected >= 1"),
        ("h2_initial_window_size", 0, "expected 1..2147483647"),
        ("h2_initial_window_size", 2**31, "expected 1..2147483647"),
        ("h2_max_frame_size", 16383, "expected 16384..16777215"),
        ("h2_max_frame_size", 2**24, "expected 16384..16777215"),
        ("tls_handshake_timeout", 0.0, "expected > 0"),
    ],
)
def test_http2_and_tls_settings_are_checked(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=f"setting {field}: {message}"):
        Settings(**{field: value})  # type: ignore[arg-type]


def test_http2_and_tls_from_env() -> None:
    s = Settings.from_env({"CHOPIN_HTTP2": "off", "CHOPIN_TLS_HANDSHAKE_TIMEOUT": "2.5"})
    assert (s.http2, s.tls_handshake_timeout) == (False, 2.5)
    assert Settings.from_env({}).http2 is True
    with pytest.raises(ConfigError, match="CHOPIN_HTTP2: expected 1/0"):
        Settings.from_env({"CHOPIN_HTTP2": "maybe"})
