"""The error hierarchy: SQLSTATE mapping and classification, from fields and from the server."""

from __future__ import annotations

import pytest
from chopin_pg import Connection, ErrorClass, NoRows, PgError
from chopin_pg import errors as e


@pytest.mark.parametrize(
    ("sqlstate", "cls", "kind"),
    [
        ("23505", e.UniqueViolation, ErrorClass.CLIENT),
        ("23502", e.NotNullViolation, ErrorClass.CLIENT),
        ("22012", e.DataError, ErrorClass.CLIENT),
        ("42601", e.ProgrammingError, ErrorClass.CLIENT),
        ("40001", e.SerializationFailure, ErrorClass.TRANSIENT),
        ("40P01", e.DeadlockDetected, ErrorClass.TRANSIENT),
        ("55P03", e.LockNotAvailable, ErrorClass.TRANSIENT),
        ("53300", e.TooManyConnections, ErrorClass.TRANSIENT),
        ("57P03", e.CannotConnectNow, ErrorClass.TRANSIENT),
        ("57P01", e.AdminShutdown, ErrorClass.POOL),
        ("08006", e.OperationalError, ErrorClass.POOL),
        ("53100", e.InsufficientResources, ErrorClass.PERMANENT),
        ("28P01", e.InvalidAuthorization, ErrorClass.PERMANENT),
        ("XX000", e.InternalError, ErrorClass.PERMANENT),
        ("99999", e.ServerError, ErrorClass.PERMANENT),
    ],
)
def test_sqlstate_mapping(sqlstate: str, cls: type[e.ServerError], kind: ErrorClass) -> None:
    err = e.error_from_fields({"S": "ERROR", "V": "ERROR", "C": sqlstate, "M": "m", "D": "d", "H": "h", "P": "3"})
    assert isinstance(err, cls)
    assert isinstance(err, PgError)
    assert err.classify() is kind
    assert (err.sqlstate, err.severity, err.message, err.detail, err.hint, err.position) == (
        sqlstate,
        "ERROR",
        "m",
        "d",
        "h",
        3,
    )
    assert str(err) == f"ERROR {sqlstate}: m\nDETAIL: d\nHINT: h"


def test_driver_errors_classify() -> None:
    assert NoRows("x").classify() is ErrorClass.CLIENT
    assert e.ConnectionLost("x").classify() is ErrorClass.POOL
    assert e.IoTimeout("x").classify() is ErrorClass.POOL
    assert e.ProtocolViolation("x").classify() is ErrorClass.POOL
    assert NoRows("x").sqlstate is None


def test_constraint_fields_from_server(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL CHECK (v > 0))")
    with pytest.raises(e.NotNullViolation) as info:
        conn.execute("INSERT INTO t VALUES (1, NULL)", ())
    assert (info.value.schema_name, info.value.table_name, info.value.column_name) == (schema, "t", "v")
    with pytest.raises(e.CheckViolation) as check:
        conn.execute("INSERT INTO t VALUES (1, -1)", ())
    assert check.value.constraint_name == "t_v_check"
    assert "DETAIL" in str(check.value)
