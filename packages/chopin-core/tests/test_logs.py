"""Structured logging: the JSON formatter and access log without sockets, then real servers."""

from __future__ import annotations

import datetime
import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from chopin_core import Chopin, ConfigError, Response, Router, TestClient, logs
from chopin_core.logs import AccessLog, JsonFormatter, JsonHandler, configure, level_from_env, worker_access_log
from chopin_core.worker import Worker

REQUIRED = ("timestamp", "level", "worker", "message")
ACCESS_FIELDS = ("method", "path", "status", "bytes", "duration_ms", "client", "client_port")


def record(msg: str = "hello %s", args: tuple[object, ...] = ("world",), **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("myapp.sub", logging.WARNING, __file__, 10, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def utc(stamp: str) -> datetime.datetime:
    """Parse an RFC 3339 timestamp and check it is UTC with milliseconds."""
    assert stamp.endswith("Z") and len(stamp) == len("2026-01-02T03:04:05.678Z"), stamp
    parsed = datetime.datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == datetime.timedelta(0)
    return parsed


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger, with its handlers, level and chopin's process switch restored afterwards."""
    root = logging.getLogger()
    engine = logging.getLogger("chopin_core")
    saved = (list(root.handlers), root.level, list(engine.handlers), engine.level, logs.PROCESS.access)
    yield root
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    engine.handlers[:] = saved[2]
    engine.setLevel(saved[3])
    logs.PROCESS.access = saved[4]


# -- the formatter -----------------------------------------------------------------


def test_formatter_writes_one_json_object_per_record():
    formatter = JsonFormatter()
    rec = record(user="ada", count=3)
    rec.created = 1_700_000_000.25
    line = formatter.format(rec)
    assert "\n" not in line
    doc = json.loads(line)
    assert list(doc)[:5] == ["timestamp", "level", "worker", "logger", "message"]
    assert doc["timestamp"] == "2023-11-14T22:13:20.250Z"
    assert utc(doc["timestamp"]).timestamp() == 1_700_000_000.25
    assert doc["level"] == "warning"
    assert doc["worker"] is None  # the supervisor, or before a worker starts
    assert doc["logger"] == "myapp.sub"
    assert doc["message"] == "hello world"
    assert doc["user"] == "ada" and doc["count"] == 3
    assert "exc_info" not in doc and "args" not in doc and "msg" not in doc


def test_formatter_stamps_the_worker_index():
    formatter = JsonFormatter()
    formatter.worker = 3
    assert json.loads(formatter.format(record()))["worker"] == 3


def test_formatter_timestamp_follows_the_clock_across_seconds():
    formatter = JsonFormatter()
    stamps = []
    for created in (10.999, 11.0, 11.5, 70.001):
        rec = record()
        rec.created = created
        stamps.append(json.loads(formatter.format(rec))["timestamp"])
    assert stamps == [
        "1970-01-01T00:00:10.999Z",
        "1970-01-01T00:00:11.000Z",
        "1970-01-01T00:00:11.500Z",
        "1970-01-01T00:01:10.001Z",
    ]


def test_formatter_puts_the_traceback_in_one_field():
    try:
        raise ValueError("bad value")
    except ValueError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["message"] == "failed"
    assert doc["exc_info"].startswith("Traceback (most recent call last):")
    assert doc["exc_info"].rstrip().endswith("ValueError: bad value")


def test_formatter_writes_odd_values_as_strings_and_keeps_reserved_names_apart():
    doc = json.loads(JsonFormatter().format(record(thing=object(), level="mine", path=b"/x")))
    assert doc["thing"].startswith("<object object at")
    assert doc["level"] == "warning" and doc["extra_level"] == "mine"


def test_formatter_escapes_control_characters():
    doc = json.loads(JsonFormatter().format(record("line1\nline2\x00 %s", ("\u00e9",))))
    assert doc["message"] == "line1\nline2\x00 \u00e9"


# -- the level ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "level"),
    [(None, logging.INFO), ("", logging.INFO), ("debug", logging.DEBUG), ("INFO", logging.INFO),
     (" Warning ", logging.WARNING), ("error", logging.ERROR)],
)  # fmt: skip
def test_level_from_env(raw, level):
    assert level_from_env({} if raw is None else {"CHOPIN_LOG": raw}) == level


@pytest.mark.parametrize("raw", ["loud", "warn", "10", "critical"])
def test_bad_level_names_the_variable(raw):
    with pytest.raises(ConfigError, match=r"CHOPIN_LOG: expected debug, info, warning or error, got"):
        level_from_env({"CHOPIN_LOG": raw})


def test_with_logging_refuses_an_unknown_level(root_logging):
    with pytest.raises(ConfigError, match="with_logging level"):
        Chopin().with_logging("chatty")


# -- configuring the process ---------------------------------------------------------------


def test_configure_replaces_plain_stderr_handlers_and_keeps_others(root_logging):
    plain = logging.StreamHandler(sys.stderr)  # what logging.basicConfig() installs
    kept_stream = io.StringIO()
    kept = logging.StreamHandler(kept_stream)  # e.g. a file: not ours to remove
    root_logging.addHandler(plain)
    root_logging.addHandler(kept)
    out = io.StringIO()
    first = configure("debug", out)
    assert plain not in root_logging.handlers and kept in root_logging.handlers
    assert root_logging.level == logging.DEBUG
    second = configure("warning", out)  # a second call replaces the first handler
    assert first not in root_logging.handlers and second in root_logging.handlers
    assert isinstance(second, JsonHandler) and root_logging.level == logging.WARNING
    logging.getLogger("myapp").warning("composed %d", 1)
    logging.getLogger("myapp").info("hidden")
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["composed 1"]
    assert kept_stream.getvalue() == "composed 1\n"


def test_configure_reads_chopin_log(root_logging, monkeypatch):
    monkeypatch.setenv("CHOPIN_LOG", "error")
    configure(stream=io.StringIO())
    assert root_logging.level == logging.ERROR
    monkeypatch.setenv("CHOPIN_LOG", "nope")
    with pytest.raises(ConfigError, match="CHOPIN_LOG"):
        Chopin().with_logging()


def test_with_logging_start_hook_sets_the_worker_and_the_access_switch(root_logging):
    out = io.StringIO()
    app = Chopin().with_logging("info", access_log=True, stream=out)
    assert logs.PROCESS.access is False  # nothing changes in the process until a worker starts
    for hook in app._on_worker_start:
        hook(2)
    assert logs.PROCESS.access is True
    logging.getLogger("chopin_core.worker").info("started")
    assert json.loads(out.getvalue())["worker"] == 2
    assert worker_access_log() is not None
    logging.getLogger(logs.ACCESS_LOGGER).setLevel(logging.WARNING)
    try:
        assert worker_access_log() is None  # INFO is off for the access logger: nothing to build
    finally:
        logging.getLogger(logs.ACCESS_LOGGER).setLevel(logging.NOTSET)


# -- the access log, in process -----------------------------------------------------------------


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def access() -> Iterator[tuple[logging.Logger, Collect]]:
    logger = logging.getLogger("test_logs.access")
    handler = Collect()
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, handler
    logger.removeHandler(handler)


def access_client(logger: logging.Logger) -> TestClient:
    router = Router()
    router.get("/", lambda ctx: Response.text("hello"))
    router.get("/stream", lambda ctx: Response.stream(iter([b"a", b"b"]), "text/plain"))
    router.get("/empty", lambda ctx: Response.new(204))
    router.post("/echo", lambda ctx: Response.raw(ctx.req.body))
    client = TestClient(router)
    worker: Worker = client._worker
    worker.access_log = AccessLog(logger).emit
    return client


def test_access_log_is_off_by_default():
    assert logs.PROCESS.access is False
    assert TestClient(Router())._worker.access_log is None


def test_access_records_carry_the_request_and_the_response(access):
    logger, handler = access
    client = access_client(logger)
    client.get("/")
    client.head("/")
    client.get("/stream")
    client.get("/empty")
    client.post("/echo", body=b"12345")
    client.get("/missing", query={"q": 1})
    got = [(r.method, r.path, r.status, r.bytes) for r in handler.records]  # type: ignore[attr-defined]
    assert got == [
        ("GET", "/", 200, 5),
        ("HEAD", "/", 200, 0),
        ("GET", "/stream", 200, None),
        ("GET", "/empty", 204, 0),
        ("POST", "/echo", 200, 5),
        ("GET", "/missing", 404, 9),
    ]
    first = handler.records[0]
    assert first.name == "test_logs.access" and first.levelno == logging.INFO
    assert first.getMessage() == "GET / 200"
    assert (first.client, first.client_port) == ("testclient", 50000)  # type: ignore[attr-defined]
    assert isinstance(first.duration_ms, float) and 0 <= first.duration_ms < 1000  # type: ignore[attr-defined]
    # The record is a complete LogRecord: a plain text formatter can use any field.
    text = logging.Formatter("%(asctime)s %(process)d %(threadName)s %(name)s %(levelname)s %(message)s")
    assert text.format(first).endswith("test_logs.access INFO GET / 200")
    assert abs(first.created - handler.records[-1].created) < 60


def test_access_records_format_as_json(access):
    logger, handler = access
    access_client(logger).get("/")
    doc = json.loads(JsonFormatter().format(handler.records[0]))
    assert {k: doc[k] for k in ("message", "method", "path", "status", "bytes")} == {
        "message": "GET / 200",
        "method": "GET",
        "path": "/",
        "status": 200,
        "bytes": 5,
    }
    utc(doc["timestamp"])
    assert "args" not in doc and "created" not in doc


# -- real servers ----------------------------------------------------------------------------------


def json_lines(text: str) -> list[dict[str, object]]:
    """Every non-empty stderr line, each of which must be a JSON object with the required fields."""
    docs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\n--- stderr:\n{text}") from None
        assert all(key in doc for key in REQUIRED), doc
        utc(doc["timestamp"])
        docs.append(doc)
    return docs


def test_server_logs_json_lines_without_access_log(serve, connect):
    server = serve("apps.logs_app:app", workers=2)
    for target in ("/", "/log", "/user/7"):
        conn = connect(server)
        assert conn.request("GET", target).status == 200
    server.wait_for_stderr("warning from myapp")
    server.wait_for_stderr("chopin serving on")  # the supervisor may log it after a worker answers
    docs = json_lines(server.stderr_text())
    serving = [d for d in docs if str(d["message"]).startswith("chopin serving on")]
    assert serving and serving[0]["worker"] is None and serving[0]["level"] == "info"  # the supervisor
    mine = {d["message"]: d for d in docs if d.get("logger") == "myapp"}
    assert set(mine) == {"info from myapp", "warning from myapp"}  # debug is below the default level
    assert mine["info from myapp"]["user"] == "ada"
    assert mine["info from myapp"]["worker"] in (0, 1)
    assert not [d for d in docs if d.get("logger") == "chopin_core.access" or "status" in d]


def test_server_access_log(serve, connect):
    server = serve("apps.logs_app:access_app", workers=1)
    conn = connect(server)
    assert conn.request("GET", "/user/42?x=1").status == 200
    assert conn.request("HEAD", "/").status == 200
    assert conn.request("POST", "/echo", body=b"abcdef").status == 200
    assert conn.request("GET", "/nope").status == 404
    server.wait_for_stderr('"path":"/nope"')
    access = [d for d in json_lines(server.stderr_text()) if d.get("logger") == "chopin_core.access"]
    assert all(key in d for d in access for key in ACCESS_FIELDS)
    got = [(d["method"], d["path"], d["status"], d["bytes"]) for d in access]
    assert got == [
        ("GET", "/user/42", 200, 11),
        ("HEAD", "/", 200, 0),
        ("POST", "/echo", 200, 6),
        ("GET", "/nope", 404, 9),
    ]
    assert access[0]["message"] == "GET /user/42 200" and access[0]["worker"] == 0 and access[0]["level"] == "info"
    # The client: the connection's peer (no trusted proxies configured).
    assert {(d["client"], d["client_port"]) for d in access} == {conn.sock.getsockname()}
    assert all(isinstance(d["duration_ms"], float) and d["duration_ms"] >= 0 for d in access)


def test_chopin_log_warning_hides_info(serve, connect):
    server = serve("apps.logs_app:access_app", workers=1, env={"CHOPIN_LOG": "warning"})
    assert connect(server).request("GET", "/log").status == 200
    server.wait_for_stderr("warning from myapp")
    docs = json_lines(server.stderr_text())
    assert docs and {d["level"] for d in docs} == {"warning"}  # no serving line, no access line, no info


def test_chopin_log_debug_shows_debug(serve, connect):
    server = serve("apps.logs_app:app", workers=1, env={"CHOPIN_LOG": "DEBUG"})
    assert connect(server).request("GET", "/log").status == 200
    server.wait_for_stderr("warning from myapp")
    assert "debug from myapp" in [d["message"] for d in json_lines(server.stderr_text())]


def test_handler_traceback_is_a_json_field(serve, connect):
    server = serve("apps.logs_app:app", workers=1)
    resp = connect(server).request("GET", "/fail")
    assert resp.status == 500 and b"boom" not in resp.body
    server.wait_for_stderr("boom in handler")
    text = server.stderr_text()
    failed = [d for d in json_lines(text) if "exc_info" in d]
    assert len(failed) == 1
    assert failed[0]["logger"] == "chopin_core.worker" and failed[0]["level"] == "error"
    assert failed[0]["message"] == "worker 0: handler for GET /fail failed"
    assert "RuntimeError: boom in handler" in str(failed[0]["exc_info"])
    assert not any(line.startswith("Traceback") for line in text.splitlines())


def test_bad_chopin_log_stops_the_server_with_a_clear_message(serve):
    with pytest.raises(pytest.fail.Exception) as failed:
        serve("apps.logs_app:app", workers=1, env={"CHOPIN_LOG": "loud"})
    assert "ConfigError: environment CHOPIN_LOG: expected debug, info, warning or error, got 'loud'" in str(
        failed.value
    )
