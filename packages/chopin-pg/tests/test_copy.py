"""COPY streaming against the real server: copy_in writers, copy_out readers, bounded memory."""

from __future__ import annotations

import datetime
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from chopin_pg import Connection, DataError, InterfaceError
from chopin_pg import _copy_ops as copy_ops
from chopin_pg.copy import FLUSH_SIZE, format_copy_row

TRICKY_TEXT = ["tab\there", "new\nline", "cr\rreturn", "back\\slash", "\\N", "\\.", "", " ", "ünïcødé ✓", "a\\tb"]


def test_format_copy_row_escapes_and_nulls() -> None:
    assert format_copy_row([1, None, "a\tb\nc\rd\\e", True, False]) == b"1\t\\N\ta\\tb\\nc\\rd\\\\e\tt\tf\n"
    assert format_copy_row([b"\x00\xff"]) == b"\\\\x00ff\n"
    assert format_copy_row([float("nan"), float("-inf"), Decimal("1.10")]) == b"NaN\t-Infinity\t1.10\n"
    assert format_copy_row([{"k": "a\tb"}]) == b'{"k":"a\\\\tb"}\n'
    assert format_copy_row([]) == b"\n"


def test_copy_in_round_trips_tricky_values(conn: Connection, schema: str) -> None:
    conn.execute(
        "CREATE TABLE t (i int, s text, b bool, f float8, n numeric, by bytea, d date, ts timestamp,"
        " tz timestamptz, u uuid, j jsonb, a int[], iv interval)"
    )
    u = uuid.uuid4()
    aware = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC)
    rows: list[tuple[Any, ...]] = []
    for k, text in enumerate(TRICKY_TEXT):
        rows.append(
            (
                k,
                text,
                k % 2 == 0,
                1.5 * k,
                Decimal("-12345678901234567890.000000001"),
                bytes(range(k * 20, k * 20 + 20)) + b"\\\t\n",
                datetime.date(1999, 12, 31),
                datetime.datetime(2000, 1, 2, 3, 4, 5, 6),
                aware,
                u,
                {"text": text, "list": [1, None, "x"]},
                [k, None, -k],
                datetime.timedelta(days=3, seconds=7, microseconds=11),
            )
        )
    rows.append((None,) * 13)
    with conn.copy_in("COPY t FROM STDIN") as writer:
        for row in rows:
            writer.write_row(row)
    assert writer.rowcount == len(rows)
    got = [tuple(r) for r in conn.query("SELECT * FROM t ORDER BY i NULLS LAST")]
    assert len(got) == len(rows)
    for expected, actual in zip(rows, got, strict=True):
        assert actual == expected


def test_copy_in_200k_rows_streams_in_bounded_chunks(
    conn: Connection, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn.execute("CREATE TABLE t (id int, name text, price numeric)")
    sizes: list[int] = []
    original = copy_ops.send

    def spy(data: bytes) -> Any:
        sizes.append(len(data))
        return original(data)

    monkeypatch.setattr(copy_ops, "send", spy)
    writer = conn.copy_in("COPY t FROM STDIN")
    for i in range(200_000):
        writer.write_row((i, f"name {i}\t!", Decimal(i) / 100))
    assert writer.finish() == 200_000
    monkeypatch.undo()
    assert len(sizes) > 50
    assert max(sizes) < FLUSH_SIZE + 200  # one buffer plus at most one row and a CopyData header
    row = conn.query_one("SELECT count(*), max(id), sum(price) FROM t WHERE name LIKE $1", ("name %\t!",))
    assert tuple(row) == (200_000, 199_999, Decimal(sum(range(200_000))) / 100)


def test_fail_leaves_connection_usable(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int)")
    writer = conn.copy_in("COPY t FROM STDIN")
    writer.write_row((1,))
    with pytest.raises(InterfaceError, match="busy with COPY FROM STDIN"):
        conn.query("SELECT 1")
    writer.fail("changed my mind")
    assert writer.closed
    with pytest.raises(InterfaceError, match="already ended"):
        writer.write_row((2,))
    assert conn.query_scalar("SELECT count(*) FROM t") == 0
    assert conn.transaction_status == "I"


def test_exception_in_with_block_fails_the_copy(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int)")
    with pytest.raises(KeyError):
        with conn.copy_in("COPY t FROM STDIN") as writer:
            for i in range(10_000):
                writer.write_row((i,))
            raise KeyError("stop")
    assert conn.query_scalar("SELECT count(*) FROM t") == 0


def test_server_rejects_bad_data(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int)")
    writer = conn.copy_in("COPY t FROM STDIN")
    writer.write_row(("not a number",))
    for i in range(50_000):  # keeps streaming after the server already failed
        writer.write_row((i,))
    with pytest.raises(DataError):
        writer.finish()
    assert conn.query_scalar("SELECT count(*) FROM t") == 0


def test_raw_write_csv_and_inside_transaction(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int, name text)")
    with conn.transaction():
        with conn.copy_in("COPY t FROM STDIN WITH (FORMAT csv)") as writer:
            writer.write(b'1,"a,b"\n')
            writer.write(memoryview(b"2,\n"))
        assert conn.in_transaction
    assert [tuple(r) for r in conn.query("SELECT * FROM t ORDER BY id")] == [(1, "a,b"), (2, None)]


def test_binary_copy_refuses_write_row(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int)")
    with conn.copy_in("COPY t FROM STDIN WITH (FORMAT binary)") as writer:
        assert writer.format == 1
        with pytest.raises(InterfaceError, match="binary"):
            writer.write_row((1,))
        writer.fail()
    assert conn.query_scalar("SELECT 1") == 1


def test_copy_in_and_out_of_the_wrong_statement(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int)")
    with pytest.raises(InterfaceError, match="did not run a COPY FROM STDIN"):
        conn.copy_in("SELECT 1")
    with pytest.raises(InterfaceError, match="did not run a COPY FROM STDIN"):
        conn.copy_in("COPY t TO STDOUT")
    with pytest.raises(InterfaceError, match="did not run a COPY TO STDOUT"):
        conn.copy_out("COPY t FROM STDIN")
    assert conn.query_scalar("SELECT count(*) FROM t") == 0


def test_copy_out_iterates_chunks(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int, s text)")
    with conn.copy_in("COPY t FROM STDIN") as writer:
        writer.write_rows((i, TRICKY_TEXT[i % len(TRICKY_TEXT)]) for i in range(50_000))
    with conn.copy_out("COPY t TO STDOUT") as reader:
        count = 0
        for chunk in reader:
            assert chunk.endswith(b"\n")
            count += 1
    assert count == 50_000
    assert reader.rowcount == 50_000
    with conn.copy_out("COPY (SELECT * FROM t WHERE id < 3 ORDER BY id) TO STDOUT") as reader:
        assert reader.read_all() == b"0\ttab\\there\n1\tnew\\nline\n2\tcr\\rreturn\n"
    with conn.copy_out("COPY (SELECT json_agg(s) FROM t WHERE id < 10) TO STDOUT WITH (FORMAT csv)") as reader:
        data = reader.read_all()
    assert json.loads(data.decode().strip().strip('"').replace('""', '"')) == TRICKY_TEXT


def test_copy_out_early_exit_drains(conn: Connection) -> None:
    with conn.copy_out("COPY (SELECT g FROM generate_series(1, 100000) g) TO STDOUT") as reader:
        assert next(reader) == b"1\n"
    assert reader.closed and reader.rowcount == 100_000
    assert conn.query_scalar("SELECT 3") == 3


def test_copy_out_error_midway(conn: Connection) -> None:
    with pytest.raises(DataError):
        with conn.copy_out("COPY (SELECT 1 / (5000 - g) FROM generate_series(1, 100000) g) TO STDOUT") as reader:
            for _ in reader:
                pass
    assert conn.query_scalar("SELECT 4") == 4


@pytest.mark.parametrize(
    ("values", "line"),
    [
        (("plain", 1, 2.5), b"plain\t1\t2.5\n"),
        (("tab\there", "new\nline", "cr\rhere", "back\\slash"), b"tab\\there\tnew\\nline\tcr\\rhere\tback\\\\slash\n"),
        ((float("nan"), float("inf"), float("-inf"), -0.0, 1e300), b"NaN\tInfinity\t-Infinity\t-0.0\t1e+300\n"),
        ((None, True, False, 0, -7), b"\\N\tt\tf\t0\t-7\n"),
    ],
)
def test_format_copy_row_fast_paths(values, line):
    assert format_copy_row(values) == line
