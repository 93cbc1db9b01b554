"""Type OIDs of the built-in PostgreSQL types this driver knows (``pg_type.oid``, stable across versions)."""

from __future__ import annotations

__all__ = ["ARRAY_OF", "ELEMENT_OF", "MULTIRANGE_OF", "NAMES", "RANGE_ELEMENT"]

BOOL = 16
BYTEA = 17
CHAR = 18
NAME = 19
INT8 = 20
INT2 = 21
INT4 = 23
TEXT = 25
OID = 26
JSON = 114
XML = 142
CIDR = 650
FLOAT4 = 700
FLOAT8 = 701
UNKNOWN = 705
INET = 869
BPCHAR = 1042
VARCHAR = 1043
DATE = 1082
TIME = 1083
TIMESTAMP = 1114
TIMESTAMPTZ = 1184
INTERVAL = 1186
TIMETZ = 1266
NUMERIC = 1700
VOID = 2278
UUID = 2950
JSONB = 3802

INT4RANGE = 3904
NUMRANGE = 3906
TSRANGE = 3908
TSTZRANGE = 3910
DATERANGE = 3912
INT8RANGE = 3926
RECORD = 2249

#: Built-in range type OID to the OID of its bounds' type.
RANGE_ELEMENT: dict[int, int] = {
    INT4RANGE: INT4,
    NUMRANGE: NUMERIC,
    TSRANGE: TIMESTAMP,
    TSTZRANGE: TIMESTAMPTZ,
    DATERANGE: DATE,
    INT8RANGE: INT8,
}

#: Built-in multirange type OID (PostgreSQL 14+) to the OID of its range type.
MULTIRANGE_OF: dict[int, int] = {
    4451: INT4RANGE,
    4532: NUMRANGE,
    4533: TSRANGE,
    4534: TSTZRANGE,
    4535: DATERANGE,
    4536: INT8RANGE,
}

#: Array type OID to element type OID.
ELEMENT_OF: dict[int, int] = {
    1000: BOOL,
    1001: BYTEA,
    1002: CHAR,
    1003: NAME,
    1005: INT2,
    1007: INT4,
    1009: TEXT,
    1014: BPCHAR,
    1015: VARCHAR,
    1016: INT8,
    1021: FLOAT4,
    1022: FLOAT8,
    1028: OID,
    1041: INET,
    651: CIDR,
    1182: DATE,
    1183: TIME,
    1115: TIMESTAMP,
    1185: TIMESTAMPTZ,
    1187: INTERVAL,
    1270: TIMETZ,
    1231: NUMERIC,
    2951: UUID,
    199: JSON,
    3807: JSONB,
    3905: INT4RANGE,
    3907: NUMRANGE,
    3909: TSRANGE,
    3911: TSTZRANGE,
    3913: DATERANGE,
    3927: INT8RANGE,
    6150: 4451,
    6151: 4532,
    6152: 4533,
    6153: 4534,
    6155: 4535,
    6157: 4536,
}

#: Element type OID to array type OID.
ARRAY_OF: dict[int, int] = {elem: arr for arr, elem in ELEMENT_OF.items()}

#: Type OID to its SQL name, for messages.
NAMES: dict[int, str] = {
    BOOL: "bool",
    BYTEA: "bytea",
    CHAR: '"char"',
    NAME: "name",
    INT8: "int8",
    INT2: "int2",
    INT4: "int4",
    TEXT: "text",
    OID: "oid",
    JSON: "json",
    CIDR: "cidr",
    FLOAT4: "float4",
    FLOAT8: "float8",
    INET: "inet",
    BPCHAR: "bpchar",
    VARCHAR: "varchar",
    DATE: "date",
    TIME: "time",
    TIMESTAMP: "timestamp",
    TIMESTAMPTZ: "timestamptz",
    INTERVAL: "interval",
    TIMETZ: "timetz",
    NUMERIC: "numeric",
    UUID: "uuid",
    JSONB: "jsonb",
    INT4RANGE: "int4range",
    NUMRANGE: "numrange",
    TSRANGE: "tsrange",
    TSTZRANGE: "tstzrange",
    DATERANGE: "daterange",
    INT8RANGE: "int8range",
}
