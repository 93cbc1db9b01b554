"""The one-query fast path (_bind.py), without sockets: bind_one and take_reply against the general path."""

from __future__ import annotations

import struct
import uuid
from decimal import Decimal
from typing import Any

import pytest
from chopin_pg import DataError, PgConfig, oids
from chopin_pg import protocol as p
from chopin_pg._bind import bind_message, bind_one, execute, take_reply
from chopin_pg._result import Result
from chopin_pg._session import Session
from chopin_pg._statements import PreparedStatement
from chopin_pg.types import DEFAULT_TYPES, encode_params
from hypothesis import given
from hypothesis import strategies as st

PARAM_OIDS = (oids.INT2, oids.INT4, oids.INT8, oids.FLOAT8, oids.TEXT, oids.NUMERIC, oids.BOOL, oids.BYTEA, oids.UUID)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),  # out of int2/4/8 range too: text fallback
    st.floats(allow_nan=False),
    # Text PostgreSQL can hold: no NUL, and no lone surrogates (UTF-8 cannot encode them; both
    # paths raise UnicodeEncodeError, which test_a_lone_surrogate_is_refused_before_sending checks).
    st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))),
    st.binary(max_size=8),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.builds(uuid.UUID, st.uuids().map(str)),
)


def msg(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack("!i", len(body) + 4) + body


def int_row(*values: int | None) -> bytes:
    body = struct.pack("!h", len(values))
    for v in values:
        body += struct.pack("!i", -1) if v is None else struct.pack("!ii", 4, v)
    return msg(b"D", body)


def session() -> Session:
    return Session(PgConfig(user="u", database="d"), DEFAULT_TYPES.copy())


def statement(s: Session, param_oids: tuple[int, ...] = (), columns: int = 2) -> PreparedStatement:
    cols = [p.ColumnDescription(f"c{i}", 0, 0, oids.INT4, 4, -1, 1) for i in range(columns)]
    return PreparedStatement("_cpg1", "SELECT ...", param_oids, cols, s.types)


def first_request(s: Session, stmt: PreparedStatement, param_sets: list[list[Any]]) -> bytes:
    gen = execute(s, stmt, param_sets)
    out = next(gen)
    gen.close()
    assert isinstance(out, bytes)
    return out


def general_path(s: Session, stmt: PreparedStatement, data: bytes) -> list[Result]:
    """What read_execute makes of the same bytes (fed in one piece)."""
    s.parser.feed(data)
    gen = s.read_execute(stmt)
    try:
        out = next(gen)
        raise AssertionError(f"read_execute wanted more input ({out!r})")
    except StopIteration as stop:
        results: list[Result] = stop.value
        return results


REPLY = b"".join(
    [
        msg(b"2", b""),
        int_row(1, 2),
        int_row(None, -3),
        msg(b"C", b"SELECT 2\x00"),
        msg(b"Z", b"T"),
    ]
)


def reference_bind(stmt: PreparedStatement, params: list[Any]) -> bytes:
    """Bind as protocol.bind and encode_params build it, step by step."""
    formats, values = encode_params(stmt.param_encoders, params)
    return p.bind("", stmt.name, p.format_codes(formats), values, stmt.result_formats)


@given(st.lists(st.tuples(st.sampled_from(PARAM_OIDS), VALUES), max_size=6))
def test_bind_message_is_protocol_bind_of_encode_params(pairs: list[tuple[int, Any]]) -> None:
    s = session()
    stmt = statement(s, tuple(oid for oid, _ in pairs))
    params = [value for _, value in pairs]
    bind = reference_bind(stmt, params)
    assert bind_message(stmt, params) == bind
    assert bind_one(s.cache, stmt, params) == bind + p.execute() + p.sync()
    assert first_request(s, stmt, [params, params]) == bind + p.execute() + bind + p.execute() + p.sync()


def test_a_lone_surrogate_is_refused_before_sending() -> None:
    s = session()
    stmt = statement(s, (oids.TEXT,))
    for build in (lambda: bind_message(stmt, ["\ud800"]), lambda: bind_one(s.cache, stmt, ["\ud800"])):
        with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
            build()
    with pytest.raises(UnicodeEncodeError):
        first_request(s, stmt, [["ok"], ["\ud800"]])


def test_bind_one_refuses_a_wrong_parameter_count() -> None:
    s = session()
    stmt = statement(s, (oids.INT4,))
    with pytest.raises(DataError, match="takes 1 parameters, 2 given"):
        bind_one(s.cache, stmt, [1, 2])


def test_bind_one_sends_pending_closes_first() -> None:
    s = session()
    stmt = statement(s, (oids.INT4,))
    s.cache.statements["old"] = PreparedStatement("_cpg9", "old", (), [], s.types)
    s.cache.evict("old")
    request = bind_one(s.cache, stmt, [Decimal(1)])  # numeric into int4: text
    assert request.startswith(p.close(b"S", "_cpg9"))
    assert s.cache.take_pending_close() == b""


def test_take_reply_decodes_a_whole_answer_in_place() -> None:
    s = session()
    stmt = statement(s)
    result = take_reply(s, REPLY, stmt)
    assert result is not None
    assert [tuple(r) for r in result.rows] == [(1, 2), (None, -3)]
    assert result.rows[1]["c1"] == -3
    assert (result.tag, result.rowcount, result.columns) == ("SELECT 2", 2, stmt.columns)
    assert s.status == "T"
    again = general_path(session(), stmt, REPLY)[0]
    assert (again.rows, again.tag) == (result.rows, result.tag)


def test_take_reply_accepts_close_complete_and_empty_results() -> None:
    s = session()
    stmt = statement(s)
    reply = msg(b"3", b"") + msg(b"2", b"") + msg(b"C", b"INSERT 0 1\x00") + msg(b"Z", b"I")
    result = take_reply(s, reply, stmt)
    assert result is not None
    assert (result.rows, result.rowcount) == ([], 1)


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(REPLY + msg(b"N", b"SNOTICE\x00Mlate\x00\x00"), id="bytes after ReadyForQuery"),
        pytest.param(REPLY[:3] + msg(b"N", b"SNOTICE\x00Mhi\x00\x00") + REPLY[3:], id="not at a boundary"),
        pytest.param(msg(b"N", b"SNOTICE\x00Mhi\x00\x00") + REPLY, id="notice"),
        pytest.param(msg(b"A", struct.pack("!i", 7) + b"ch\x00x\x00") + REPLY, id="notification"),
        pytest.param(msg(b"S", b"TimeZone\x00UTC\x00") + REPLY, id="parameter status"),
        pytest.param(msg(b"E", b"SERROR\x00C22012\x00Mdivision by zero\x00\x00") + msg(b"Z", b"I"), id="error"),
        pytest.param(msg(b"2", b"") + msg(b"Z", b"I"), id="no CommandComplete"),
        pytest.param(REPLY.replace(msg(b"Z", b"T"), msg(b"C", b"SELECT 0\x00") + msg(b"Z", b"T")), id="two results"),
        pytest.param(msg(b"2", b"") + msg(b"s", b"") + msg(b"Z", b"I"), id="portal suspended"),
        pytest.param(msg(b"D", struct.pack("!hi", 2, 3) + b"abc" + struct.pack("!i", -1)) + REPLY, id="bad value"),
        pytest.param(b"2\x00\x00\x00\x02" + REPLY, id="impossible length"),
        pytest.param(b"", id="nothing"),
        pytest.param(msg(b"2", b"") + msg(b"C", b"\xff\x00") + msg(b"Z", b"I"), id="undecodable tag"),
    ],
)
def test_take_reply_leaves_anything_else_to_the_general_path(reply: bytes) -> None:
    s = session()
    stmt = statement(s)
    assert take_reply(s, reply, stmt) is None
    assert s.status == "I"
    assert s.parser.buffered == 0
    assert not s.notices
    assert not s.notifications


def test_take_reply_refuses_every_partial_answer() -> None:
    stmt = statement(session())
    for cut in range(len(REPLY)):
        s = session()
        assert take_reply(s, REPLY[:cut], stmt) is None, cut
        assert s.status == "I"


def test_what_take_reply_refuses_the_general_path_handles() -> None:
    s = session()
    stmt = statement(s)
    notice = msg(b"N", b"SNOTICE\x00Mhi\x00\x00")
    assert take_reply(s, notice + REPLY, stmt) is None
    results = general_path(s, stmt, notice + REPLY)
    assert [tuple(r) for r in results[0].rows] == [(1, 2), (None, -3)]
    assert s.notices[-1]["M"] == "hi"
    assert s.status == "T"
