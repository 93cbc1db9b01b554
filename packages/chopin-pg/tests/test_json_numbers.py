"""JSON numbers against the real server: exact out (big ints, Decimal past float range), no inf/nan in.

Each test runs on both JSON back ends: orjson (the fast path, when installed) and the standard library.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from chopin_pg import Connection, ParameterError, PgConfig, PgPool
from chopin_pg import _codecs as codecs

BIG = 123456789012345678901234567890


@pytest.fixture(params=["orjson", "stdlib"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Which JSON library decodes and encodes: orjson (the ``test`` extra installs it) or the standard library."""
    if request.param == "orjson":
        if codecs.orjson is None:
            pytest.skip("orjson is not installed in this environment (pip install chopin-pg[json])")
    else:
        monkeypatch.setattr(codecs, "orjson", None)
    yield request.param


@pytest.mark.parametrize("cast", ["jsonb", "json"])
def test_numbers_past_float_range_come_back_as_decimal(conn: Connection, backend: str, cast: str) -> None:
    # Before: with orjson, '1e400'::jsonb raised while decoding and the row was lost.
    value = conn.query_scalar(f"SELECT '1e400'::{cast}")
    expected = 10**400 if cast == "jsonb" else Decimal("1e400")  # jsonb writes numeric digits, json the text
    assert value == expected and type(value) is type(expected)
    tiny = conn.query_scalar(f"SELECT '[1e-400]'::{cast}")[0]
    assert tiny == Decimal("1e-400") and isinstance(tiny, Decimal)  # not 0.0
    assert conn.query_simple(f"SELECT '{{\"a\": -1e400}}'::{cast}")[0][0] == {
        "a": -(10**400) if cast == "jsonb" else Decimal("-1e400")
    }


def test_big_jsonb_integers_stay_exact_ints(conn: Connection, backend: str) -> None:
    # Before: with orjson, 123456789012345678901234567890 came back as the float 1.2345678901234568e+29.
    assert conn.query_scalar(f"SELECT '{BIG}'::jsonb") == BIG
    assert type(conn.query_scalar(f"SELECT '{BIG}'::jsonb")) is int
    row = conn.query_one("SELECT '[18446744073709551616, -9223372036854775809, 1.5, 7]'::jsonb")
    assert row[0] == [2**64, -(2**63) - 1, 1.5, 7] and [type(v) for v in row[0]] == [int, int, float, int]
    assert conn.query_scalar("SELECT $1::jsonb", ({"n": BIG},)) == {"n": BIG}  # and in: exact too
    assert conn.query_scalar("SELECT $1::jsonb #>> '{n}'", ({"n": 2**70},)) == str(2**70)


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")], ids=["inf", "-inf", "nan"])
def test_inf_and_nan_in_json_are_refused_before_sending(conn: Connection, backend: str, bad: float) -> None:
    # Before: with orjson, inf was silently stored as null.
    conn.execute("CREATE TEMP TABLE jn (j jsonb, t json)")
    conn.begin()
    with pytest.raises(ParameterError, match=r"\$\.a\[1\]: expected a finite number"):
        conn.execute("INSERT INTO jn (j) VALUES ($1)", ({"a": [1, bad]},))
    with pytest.raises(ParameterError):
        conn.execute("INSERT INTO jn (t) VALUES ($1)", ({"a": bad},))  # json: the text encoder
    assert conn.transaction_status == "T"  # not "E": the server saw no failing statement
    conn.execute("INSERT INTO jn (j) VALUES ($1)", ({"a": [1, None]},))
    conn.commit()
    assert conn.query("SELECT j FROM jn") == [({"a": [1, None]},)]


def test_refused_json_parameter_leaves_the_pool_usable(config: PgConfig, backend: str) -> None:
    with PgPool.connect(config, 1) as pool:
        with pytest.raises(ParameterError), pool.get() as conn:
            pid = conn.backend_pid
            conn.query("SELECT $1::jsonb", ([float("inf")],))
        with pool.get() as conn:
            assert conn.backend_pid == pid
            assert conn.query_scalar("SELECT $1::jsonb", ([1.5],)) == [1.5]
        assert pool.stats().broken == 0
